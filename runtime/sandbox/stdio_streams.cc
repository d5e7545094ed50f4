#include "runtime/sandbox/stdio_streams.h"

#include <unistd.h>

#include <cerrno>

#include "base/sys_error.h"

namespace skiff::runtime {

FdOutputStream::FdOutputStream(UniqueFd fd) : fd_(std::move(fd)), writer_([this] { run(); }) {}

FdOutputStream::~FdOutputStream() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

kj::Promise<void> FdOutputStream::write(WriteContext ctx) {
  auto bytes = ctx.getParams().getBytes();
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size()), kj::mv(paf.fulfiller)});
  }
  cv_.notify_one();
  return kj::mv(paf.promise);
}

kj::Promise<void> FdOutputStream::end(EndContext) {
  // The writer thread drains what is queued; the fd closes with the stream.
  return kj::READY_NOW;
}

void FdOutputStream::run() {
  bool broken = false;
  for (;;) {
    Chunk chunk;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      chunk = std::move(queue_.front());
      queue_.pop_front();
    }
    size_t off = 0;
    while (!broken && off < chunk.bytes.size()) {
      ssize_t n = retry_eintr([&] { return ::write(fd_.get(), chunk.bytes.data() + off, chunk.bytes.size() - off); });
      if (n <= 0) broken = true;  // EPIPE and the like: the reader is gone
      else off += static_cast<size_t>(n);
    }
    chunk.done->fulfill();
  }
}

struct FdInputPump::Shared {
  Shared(UniqueFd f, api::ByteStream::Client s) : fd(std::move(f)), stream(kj::mv(s)), executor(&kj::getCurrentThreadExecutor()) {}
  UniqueFd fd;
  api::ByteStream::Client stream;
  const kj::Executor* executor;
  std::mutex mu;
  bool owner_gone = false;
};

FdInputPump::FdInputPump(UniqueFd fd, api::ByteStream::Client stream)
    : shared_(std::make_shared<Shared>(std::move(fd), kj::mv(stream))) {
  std::thread([shared = shared_] {
    char buf[16384];
    for (;;) {
      ssize_t n = retry_eintr([&] { return ::read(shared->fd.get(), buf, sizeof buf); });
      {
        std::lock_guard lock(shared->mu);
        if (shared->owner_gone) return;
      }
      try {
        if (n <= 0) {
          shared->executor->executeSync([&] { return shared->stream.endRequest().send().ignoreResult(); });
          return;
        }
        std::string chunk(buf, static_cast<size_t>(n));
        shared->executor->executeSync([&] {
          auto req = shared->stream.writeRequest();
          req.setBytes(kj::arrayPtr(reinterpret_cast<const kj::byte*>(chunk.data()), chunk.size()));
          return req.send();
        });
      } catch (...) {
        return;  // the stream or the loop is gone: nobody wants the rest
      }
    }
  }).detach();
}

FdInputPump::~FdInputPump() {
  std::lock_guard lock(shared_->mu);
  shared_->owner_gone = true;
}

}  // namespace skiff::runtime
