#pragma once
// ttrpc's framing, as github.com/containerd/ttrpc's channel.go reads and
// writes it: every message is a 10-byte header, then `length` bytes.
//
//   bytes 0-3  length of what follows, big-endian (at most 4 MiB)
//   bytes 4-7  stream id, big-endian (a client's requests use odd ids, rising)
//   byte  8    message type: 1 request, 2 response, 3 data (ttrpc 1.2 streams)
//   byte  9    flags (ttrpc 1.2: 1 remote closed, 2 remote open, 4 no data)
//
// FrameDecoder is the one parser of that header: it is fed bytes as they
// arrive, in pieces of any size, and never trusts a length before checking
// it, so hostile input costs at most one frame of memory.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace skiff::ttrpc {

inline constexpr size_t kHeaderSize = 10;
inline constexpr uint32_t kMaxMessageSize = 4u << 20;  // channel.go's messageLengthMax

enum class MessageType : uint8_t { Request = 1, Response = 2, Data = 3 };
// "request", "response", "data", or "0x.." for any other byte.
std::string message_type_name(uint8_t type);

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
};

struct Frame {
  uint32_t stream_id = 0;
  MessageType type = MessageType::Request;
  uint8_t flags = 0;
  std::string payload;
};

void encode_header(const FrameHeader& header, uint8_t out[kHeaderSize]);
FrameHeader decode_header(const uint8_t in[kHeaderSize]);

// Header and payload in one string, ready to write. Throws
// std::length_error when the payload is over `max_size` (no peer would take it).
std::string encode_frame(uint32_t stream_id, MessageType type, uint8_t flags, std::string_view payload,
                         uint32_t max_size = kMaxMessageSize);

class FrameDecoder {
 public:
  enum class Result {
    NeedMore,   // no whole frame yet: feed more bytes
    Frame,      // `out` holds the next frame
    Oversized,  // a frame longer than the limit went by: `oversized()` is its
                // header; its payload was skipped, not kept (ttrpc answers
                // ResourceExhausted on its stream and reads on)
    Error,      // not ttrpc: `error()` says why; every later call says Error again
  };

  explicit FrameDecoder(uint32_t max_size = kMaxMessageSize) : max_size_(max_size) {}

  // Appends bytes received (a no-op once in error).
  void feed(std::span<const uint8_t> bytes);
  void feed(std::string_view bytes) {
    feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  // The next event from what has been fed so far.
  Result next(Frame& out);
  // At the end of the stream: true when it ended between frames; otherwise
  // the decoder is in error ("the stream ended inside a frame: ...").
  bool finish();

  const std::string& error() const { return error_; }
  const FrameHeader& oversized() const { return oversized_; }
  // Bytes fed but not yet returned (a partial frame).
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  Result fail(std::string why);

  uint32_t max_size_;
  std::string buffer_;
  size_t start_ = 0;       // where the unread bytes begin in buffer_
  uint64_t skipping_ = 0;  // payload bytes of an oversized frame still to drop
  bool oversized_pending_ = false;  // its Oversized not yet returned
  FrameHeader oversized_;
  std::string error_;
};

}  // namespace skiff::ttrpc
