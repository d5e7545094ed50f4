#pragma once
// Frames over a KJ byte stream, for the server's connections and the
// client: a reader that turns what arrives into frames (FrameDecoder), and a
// writer that keeps frames whole and in order while several calls answer at
// once (a KJ stream takes one write at a time).
#include <kj/async-io.h>

#include <deque>
#include <string>
#include <vector>

#include "runtime/shim/ttrpc/frame.h"

namespace skiff::ttrpc {

class FrameReader {
 public:
  struct Event {
    enum class Kind { Frame, Oversized, End } kind = Kind::End;
    Frame frame;           // Kind::Frame
    FrameHeader oversized; // Kind::Oversized: its payload was skipped
  };

  FrameReader(kj::AsyncInputStream& in, uint32_t max_message = kMaxMessageSize);

  // The next frame, an oversized frame's header, or End where the stream
  // ended between frames. Rejects with the decoder's reason on bytes that
  // are not ttrpc or a stream that ends inside a frame.
  kj::Promise<Event> next();

 private:
  kj::AsyncInputStream& in_;
  FrameDecoder decoder_;
  kj::Array<kj::byte> buffer_;
};

class FrameWriter {
 public:
  explicit FrameWriter(kj::AsyncOutputStream& out);

  // Queues one encoded frame (encode_frame). Frames queued while a write is
  // in flight go out together in the next one. After a failed write,
  // frames are dropped: the connection is going down.
  void send(std::string frame);
  bool idle() const { return !busy_; }
  // Resolves once everything queued so far is written (at once if idle).
  kj::Promise<void> drained();
  // Rejects with the first write's failure; never resolves otherwise. Once.
  kj::Promise<void> failure();

 private:
  kj::Promise<void> write_batch();
  void wake_drained();

  kj::AsyncOutputStream& out_;
  std::deque<std::string> queue_;
  bool busy_ = false;
  bool failed_ = false;
  kj::Promise<void> loop_ = nullptr;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> drained_;
  kj::Own<kj::PromiseFulfiller<void>> failure_fulfiller_;
  kj::Maybe<kj::Promise<void>> failure_promise_;
};

}  // namespace skiff::ttrpc
