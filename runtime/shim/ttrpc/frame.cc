#include "runtime/shim/ttrpc/frame.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace skiff::ttrpc {
namespace {

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
bool known_type(uint8_t t) { return t >= 1 && t <= 3; }

}  // namespace

std::string message_type_name(uint8_t type) {
  switch (type) {
    case 1:
      return "request";
    case 2:
      return "response";
    case 3:
      return "data";
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", type);
  return buf;
}

void encode_header(const FrameHeader& h, uint8_t out[kHeaderSize]) {
  put_be32(out, h.length);
  put_be32(out + 4, h.stream_id);
  out[8] = h.type;
  out[9] = h.flags;
}

FrameHeader decode_header(const uint8_t in[kHeaderSize]) {
  return FrameHeader{get_be32(in), get_be32(in + 4), in[8], in[9]};
}

std::string encode_frame(uint32_t stream_id, MessageType type, uint8_t flags, std::string_view payload,
                         uint32_t max_size) {
  if (payload.size() > max_size)
    throw std::length_error("ttrpc message of " + std::to_string(payload.size()) + " bytes is over the " +
                            std::to_string(max_size) + "-byte limit");
  std::string out(kHeaderSize + payload.size(), '\0');
  encode_header(FrameHeader{static_cast<uint32_t>(payload.size()), stream_id, static_cast<uint8_t>(type), flags},
                reinterpret_cast<uint8_t*>(out.data()));
  out.replace(kHeaderSize, payload.size(), payload);
  return out;
}

void FrameDecoder::feed(std::span<const uint8_t> bytes) {
  if (!error_.empty()) return;
  // An oversized frame's payload is dropped as it arrives, never stored.
  if (skipping_ > 0 && buffered() == 0) {
    const size_t drop = static_cast<size_t>(std::min<uint64_t>(skipping_, bytes.size()));
    skipping_ -= drop;
    bytes = bytes.subspan(drop);
  }
  if (bytes.empty()) return;
  // Reclaim what has been read before growing: the buffer stays about one frame.
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

FrameDecoder::Result FrameDecoder::fail(std::string why) {
  error_ = std::move(why);
  buffer_.clear();
  buffer_.shrink_to_fit();
  start_ = 0;
  skipping_ = 0;
  oversized_pending_ = false;
  return Result::Error;
}

FrameDecoder::Result FrameDecoder::next(Frame& out) {
  if (!error_.empty()) return Result::Error;
  if (skipping_ > 0) {
    // Bytes fed while a header was still being completed may hold the
    // oversized payload's start.
    const size_t drop = static_cast<size_t>(std::min<uint64_t>(skipping_, buffered()));
    start_ += drop;
    skipping_ -= drop;
    if (skipping_ > 0) return Result::NeedMore;
  }
  if (oversized_pending_) {  // its payload is all gone by now
    oversized_pending_ = false;
    return Result::Oversized;
  }
  if (buffered() < kHeaderSize) return Result::NeedMore;
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + start_);
  const FrameHeader h = decode_header(p);
  // The type byte first: a stream that is not ttrpc (an HTTP request, a
  // Cap'n Proto client at the wrong socket, noise) is told apart here rather
  // than read as a frame of some gigabytes.
  if (!known_type(h.type))
    return fail("not a ttrpc frame: message type " + message_type_name(h.type) + " on stream " +
                std::to_string(h.stream_id) + " (1 request, 2 response, 3 data)");
  if (h.length > max_size_) {
    oversized_ = h;
    oversized_pending_ = true;
    start_ += kHeaderSize;
    skipping_ = h.length;
    return next(out);
  }
  if (buffered() < kHeaderSize + h.length) return Result::NeedMore;
  out.stream_id = h.stream_id;
  out.type = static_cast<MessageType>(h.type);
  out.flags = h.flags;
  out.payload.assign(buffer_, start_ + kHeaderSize, h.length);
  start_ += kHeaderSize + h.length;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return Result::Frame;
}

bool FrameDecoder::finish() {
  if (!error_.empty()) return false;
  if (skipping_ > 0) {
    fail("the stream ended inside an oversized frame on stream " + std::to_string(oversized_.stream_id) + ", " +
         std::to_string(skipping_) + " of its " + std::to_string(oversized_.length) + " bytes unread");
    return false;
  }
  const size_t have = buffered();
  if (have == 0) return true;
  if (have < kHeaderSize) {
    fail("the stream ended inside a frame header (" + std::to_string(have) + " of " + std::to_string(kHeaderSize) +
         " bytes)");
    return false;
  }
  const FrameHeader h = decode_header(reinterpret_cast<const uint8_t*>(buffer_.data() + start_));
  fail("the stream ended inside a " + message_type_name(h.type) + " frame on stream " + std::to_string(h.stream_id) +
       " (" + std::to_string(have - kHeaderSize) + " of " + std::to_string(h.length) + " payload bytes)");
  return false;
}

}  // namespace skiff::ttrpc
