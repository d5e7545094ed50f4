#include "runtime/shim/ttrpc/frame_stream.h"

#include <stdexcept>
#include <utility>

namespace skiff::ttrpc {
namespace {

// Enough for most requests in one read; bigger frames take several.
constexpr size_t kReadChunk = 64 * 1024;

kj::Exception protocol_error(const std::string& why) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str("ttrpc: ", why.c_str()));
}

}  // namespace

FrameReader::FrameReader(kj::AsyncInputStream& in, uint32_t max_message)
    : in_(in), decoder_(max_message), buffer_(kj::heapArray<kj::byte>(kReadChunk)) {}

kj::Promise<FrameReader::Event> FrameReader::next() {
  Event ev;
  switch (decoder_.next(ev.frame)) {
    case FrameDecoder::Result::Frame:
      ev.kind = Event::Kind::Frame;
      return kj::mv(ev);
    case FrameDecoder::Result::Oversized:
      ev.kind = Event::Kind::Oversized;
      ev.oversized = decoder_.oversized();
      return kj::mv(ev);
    case FrameDecoder::Result::Error:
      return protocol_error(decoder_.error());
    case FrameDecoder::Result::NeedMore:
      break;
  }
  return in_.tryRead(buffer_.begin(), 1, buffer_.size()).then([this](size_t n) -> kj::Promise<Event> {
    if (n == 0) {
      if (decoder_.finish()) return Event{};
      return protocol_error(decoder_.error());
    }
    decoder_.feed(std::span<const uint8_t>(buffer_.begin(), n));
    return next();
  });
}

FrameWriter::FrameWriter(kj::AsyncOutputStream& out) : out_(out) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  failure_fulfiller_ = kj::mv(paf.fulfiller);
  failure_promise_ = kj::mv(paf.promise);
}

void FrameWriter::send(std::string frame) {
  if (failed_) return;
  queue_.push_back(std::move(frame));
  if (busy_) return;
  busy_ = true;
  // Only ever replaced once the previous loop has finished (busy_ false).
  loop_ = write_batch().eagerlyEvaluate([this](kj::Exception&& e) {
    failed_ = true;
    busy_ = false;
    queue_.clear();
    // Rejecting is asynchronous: whoever tears the connection down does so
    // from its own continuation, never from inside this one.
    failure_fulfiller_->reject(kj::mv(e));
    wake_drained();
  });
}

kj::Promise<void> FrameWriter::write_batch() {
  if (queue_.empty()) {
    busy_ = false;
    wake_drained();
    return kj::READY_NOW;
  }
  auto batch = kj::heap<std::deque<std::string>>(std::exchange(queue_, {}));
  auto pieces = kj::heapArray<kj::ArrayPtr<const kj::byte>>(batch->size());
  for (size_t i = 0; i < batch->size(); ++i)
    pieces[i] = kj::arrayPtr(reinterpret_cast<const kj::byte*>((*batch)[i].data()), (*batch)[i].size());
  auto written = out_.write(pieces.asPtr());
  return written.attach(kj::mv(batch), kj::mv(pieces)).then([this] { return write_batch(); });
}

void FrameWriter::wake_drained() {
  for (auto& f : drained_) f->fulfill();
  drained_.clear();
}

kj::Promise<void> FrameWriter::drained() {
  if (!busy_) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  drained_.push_back(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

kj::Promise<void> FrameWriter::failure() {
  KJ_IF_MAYBE(p, failure_promise_) {
    auto out = kj::mv(*p);
    failure_promise_ = nullptr;
    return out;
  }
  throw std::logic_error("FrameWriter::failure() is taken once");
}

}  // namespace skiff::ttrpc
