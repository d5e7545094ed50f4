// libFuzzer target for the ttrpc framing (runtime/shim/ttrpc/frame) and what
// the server makes of the frames: a shim's socket takes bytes from whatever
// connects to it.
//
// Input: byte 0 picks a chunk size (1..256); the rest is the byte stream a
// peer sends. Seeds in fuzz/corpus/ttrpc_frame/ are such streams: requests,
// several at once, oversized, truncated, not ttrpc (fuzz/ttrpc_frame_seeds.py
// writes them).
//
// Checked beyond "no crash / no sanitizer report":
// - the decoder fed the stream in chunks yields exactly the events it yields
//   fed all at once, then at most one error, which sticks, and never holds
//   more than a frame and a chunk;
// - every frame it yields re-encodes to the bytes it came from;
// - a Server given the stream answers with Response frames only, each a
//   valid Response, at most one per request or oversized frame (the last may
//   be cut short: the server drops a connection at its end, as Go's does).
#include <kj/async-io.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/shim/ttrpc/frame.h"
#include "runtime/shim/ttrpc/request.pb.h"
#include "runtime/shim/ttrpc/server.h"

namespace {

using namespace skiff::ttrpc;

// Small enough that lengths in random input land under it now and then.
constexpr uint32_t kLimit = 4096;

[[noreturn]] void fail(const char* why, const std::string& detail = {}) {
  std::fprintf(stderr, "ttrpc_frame_fuzz: %s %s\n", why, detail.c_str());
  std::abort();
}

struct Event {
  FrameDecoder::Result result;
  Frame frame;
  bool operator==(const Event& o) const {
    return result == o.result && frame.stream_id == o.frame.stream_id && frame.type == o.frame.type &&
           frame.flags == o.frame.flags && frame.payload == o.frame.payload;
  }
};

std::vector<Event> decode(std::string_view bytes, size_t chunk, std::string* error) {
  FrameDecoder d(kLimit);
  std::vector<Event> out;
  bool failed = false;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    d.feed(bytes.substr(at, chunk));
    for (;;) {
      Event e{};
      e.result = d.next(e.frame);
      if (e.result == FrameDecoder::Result::NeedMore) break;
      if (failed && e.result != FrameDecoder::Result::Error) fail("an event after an error");
      if (e.result == FrameDecoder::Result::Error) {
        if (!failed) out.push_back(e);
        failed = true;
        break;
      }
      if (e.result == FrameDecoder::Result::Frame && e.frame.payload.size() > kLimit) fail("a frame over the limit");
      out.push_back(std::move(e));
    }
    if (d.buffered() > kHeaderSize + kLimit + chunk) fail("the decoder holds more than a frame and a chunk");
  }
  if (!d.finish() && !failed) out.push_back(Event{FrameDecoder::Result::Error, {}});
  *error = d.error();
  return out;
}

// One Server for the whole run, on its own loop.
struct Rig {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  Server server{*io.lowLevelProvider, io.provider->getTimer(), services(), ServerOptions{.max_in_flight = 8, .max_message = kLimit}};

  static ServiceSet services() {
    ServiceSet s;
    s.add("skiff.fuzz.Echo", "Echo", [](const CallContext&, Payload p) -> kj::Promise<Payload> { return kj::mv(p); });
    s.add("skiff.fuzz.Echo", "Fail", [](const CallContext& c, Payload) -> kj::Promise<Payload> {
      throw Error(Code::NotFound, c.service);
    });
    return s;
  }
};

void serve(std::string_view bytes, size_t requests_or_oversized) {
  static Rig rig;
  auto& ws = rig.io.waitScope;
  auto pipe = rig.io.provider->newTwoWayPipe();
  rig.server.serve(kj::mv(pipe.ends[0]));
  auto& peer = *pipe.ends[1];
  // Written whole, then no more: the server answers what it read in time
  // and closes at the end (as Go's does, dropping calls still running).
  auto writing = peer.write(bytes.data(), bytes.size()).then([&peer] { peer.shutdownWrite(); }).eagerlyEvaluate(nullptr);
  std::string out;
  kj::byte buf[4096];
  for (;;) {
    const size_t n = peer.tryRead(buf, 1, sizeof buf).wait(ws);
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(buf), n);
  }
  writing.wait(ws);
  FrameDecoder d(kMaxMessageSize);
  d.feed(out);
  size_t answers = 0;
  for (;;) {
    Frame f;
    const auto r = d.next(f);
    if (r == FrameDecoder::Result::NeedMore) break;
    if (r != FrameDecoder::Result::Frame) fail("the server wrote something that is not a frame:", d.error());
    if (f.type != MessageType::Response) fail("the server wrote a frame that is not a response");
    skiff::ttrpc::wire::Response resp;
    if (!resp.ParseFromString(f.payload)) fail("the server wrote a response that does not parse");
    ++answers;
  }
  // A truncated last frame is allowed: the server closes at the end of the
  // input, or at a protocol error, with answers possibly still being written.
  if (answers > requests_or_oversized) fail("more answers than requests");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (1u << 20)) return 0;
  const size_t chunk = 1 + data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string whole_error, chunked_error;
  const auto whole = decode(bytes, bytes.size() + 1, &whole_error);
  const auto chunked = decode(bytes, chunk, &chunked_error);
  if (whole != chunked || whole_error != chunked_error) fail("chunked decoding differs from whole:", chunked_error);

  // Frames re-encode to their bytes, in order (oversized frames skip their
  // header and length; an error ends the comparison).
  size_t at = 0, requests = 0;
  for (const auto& e : whole) {
    if (e.result == FrameDecoder::Result::Error) break;
    if (e.result == FrameDecoder::Result::Oversized) {
      ++requests;
      const auto h = decode_header(reinterpret_cast<const uint8_t*>(bytes.data() + at));
      at += kHeaderSize + h.length;
      continue;
    }
    const std::string again = encode_frame(e.frame.stream_id, e.frame.type, e.frame.flags, e.frame.payload, kLimit);
    if (bytes.substr(at, again.size()) != again) fail("a frame does not re-encode to its bytes");
    at += again.size();
    if (e.frame.type == MessageType::Request) {
      ++requests;
      skiff::ttrpc::wire::Request req;
      (void)req.ParseFromString(e.frame.payload);  // any bytes: parse or refuse, never crash
    }
  }

  serve(bytes, requests);
  return 0;
}
