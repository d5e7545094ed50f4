// ttrpc framing: the header as Go's channel.go writes it, the decoder fed
// whole streams, single bytes, truncated, oversized and non-ttrpc input, and
// properties over random frame streams split at random points and random bytes.
#include "runtime/shim/ttrpc/frame.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace skiff::ttrpc {
namespace {

std::vector<Frame> decode_all(FrameDecoder& d, std::string* error = nullptr) {
  std::vector<Frame> out;
  for (;;) {
    Frame f;
    switch (d.next(f)) {
      case FrameDecoder::Result::Frame:
        out.push_back(std::move(f));
        continue;
      case FrameDecoder::Result::Oversized:
        continue;
      case FrameDecoder::Result::Error:
        if (error) *error = d.error();
        return out;
      case FrameDecoder::Result::NeedMore:
        return out;
    }
  }
}

TEST(TtrpcFrame, HeaderBytesAreGosLayout) {
  // messageHeader{Length: 5, StreamID: 0x01020304, Type: request, Flags: 0x02}
  const std::string f = encode_frame(0x01020304, MessageType::Request, 0x02, "hello");
  const std::string expected("\x00\x00\x00\x05\x01\x02\x03\x04\x01\x02hello", 15);
  EXPECT_EQ(f, expected);
  const FrameHeader h = decode_header(reinterpret_cast<const uint8_t*>(f.data()));
  EXPECT_EQ(h.length, 5u);
  EXPECT_EQ(h.stream_id, 0x01020304u);
  EXPECT_EQ(h.type, 1);
  EXPECT_EQ(h.flags, 2);
}

TEST(TtrpcFrame, HeaderRoundTripsEveryField) {
  const FrameHeader h{0xfedcba98, 0xffffffff, 3, 0xff};
  uint8_t b[kHeaderSize];
  encode_header(h, b);
  const FrameHeader back = decode_header(b);
  EXPECT_EQ(back.length, h.length);
  EXPECT_EQ(back.stream_id, h.stream_id);
  EXPECT_EQ(back.type, h.type);
  EXPECT_EQ(back.flags, h.flags);
}

TEST(TtrpcFrame, EncodeRefusesAPayloadOverTheLimit) {
  EXPECT_THROW(encode_frame(1, MessageType::Request, 0, std::string(17, 'x'), 16), std::length_error);
  EXPECT_NO_THROW(encode_frame(1, MessageType::Request, 0, std::string(16, 'x'), 16));
}

TEST(TtrpcFrame, DecodesSeveralFramesFedAtOnce) {
  FrameDecoder d;
  d.feed(encode_frame(1, MessageType::Request, 0, "a") + encode_frame(3, MessageType::Response, 0, "") +
         encode_frame(5, MessageType::Data, 4, std::string(1000, 'z')));
  const auto frames = decode_all(d);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].stream_id, 1u);
  EXPECT_EQ(frames[0].payload, "a");
  EXPECT_EQ(frames[1].type, MessageType::Response);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[2].flags, 4);
  EXPECT_EQ(frames[2].payload.size(), 1000u);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_TRUE(d.finish());
}

TEST(TtrpcFrame, DecodesAFrameFedOneByteAtATime) {
  const std::string s = encode_frame(7, MessageType::Request, 0, "payload bytes");
  FrameDecoder d;
  Frame f;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    d.feed(std::string_view(&s[i], 1));
    ASSERT_EQ(d.next(f), FrameDecoder::Result::NeedMore) << "after byte " << i;
  }
  d.feed(std::string_view(&s.back(), 1));
  ASSERT_EQ(d.next(f), FrameDecoder::Result::Frame);
  EXPECT_EQ(f.payload, "payload bytes");
}

TEST(TtrpcFrame, AStreamEndingInsideAHeaderIsAnError) {
  FrameDecoder d;
  d.feed(encode_frame(1, MessageType::Request, 0, "x").substr(0, 6));
  Frame f;
  EXPECT_EQ(d.next(f), FrameDecoder::Result::NeedMore);
  EXPECT_FALSE(d.finish());
  EXPECT_EQ(d.error(), "the stream ended inside a frame header (6 of 10 bytes)");
}

TEST(TtrpcFrame, AStreamEndingInsideAPayloadIsAnError) {
  FrameDecoder d;
  d.feed(encode_frame(9, MessageType::Request, 0, "0123456789").substr(0, 14));
  Frame f;
  EXPECT_EQ(d.next(f), FrameDecoder::Result::NeedMore);
  EXPECT_FALSE(d.finish());
  EXPECT_EQ(d.error(), "the stream ended inside a request frame on stream 9 (4 of 10 payload bytes)");
  EXPECT_EQ(d.next(f), FrameDecoder::Result::Error);
}

TEST(TtrpcFrame, AnOversizedFrameIsSkippedAndTheNextOneDecodes) {
  FrameDecoder d(16);
  uint8_t h[kHeaderSize];
  encode_header(FrameHeader{40, 11, 1, 0}, h);
  d.feed(std::span<const uint8_t>(h, kHeaderSize));
  d.feed(std::string(25, 'x'));
  Frame f;
  EXPECT_EQ(d.next(f), FrameDecoder::Result::NeedMore);
  EXPECT_EQ(d.buffered(), 0u) << "an oversized payload is dropped, not kept";
  d.feed(std::string(15, 'x') + encode_frame(13, MessageType::Request, 0, "next"));
  ASSERT_EQ(d.next(f), FrameDecoder::Result::Oversized);
  EXPECT_EQ(d.oversized().stream_id, 11u);
  EXPECT_EQ(d.oversized().length, 40u);
  ASSERT_EQ(d.next(f), FrameDecoder::Result::Frame);
  EXPECT_EQ(f.stream_id, 13u);
  EXPECT_EQ(f.payload, "next");
}

TEST(TtrpcFrame, TheDefaultLimitIsFourMebibytes) {
  FrameDecoder d;
  uint8_t h[kHeaderSize];
  encode_header(FrameHeader{kMaxMessageSize + 1, 1, 1, 0}, h);
  d.feed(std::span<const uint8_t>(h, kHeaderSize));
  Frame f;
  EXPECT_EQ(d.next(f), FrameDecoder::Result::NeedMore);
  EXPECT_FALSE(d.finish());
  EXPECT_NE(d.error().find("ended inside an oversized frame on stream 1, 4194305 of its 4194305 bytes unread"),
            std::string::npos)
      << d.error();
}

TEST(TtrpcFrame, BytesThatAreNotTtrpcAreAnErrorThatSticks) {
  FrameDecoder d;
  d.feed(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  Frame f;
  ASSERT_EQ(d.next(f), FrameDecoder::Result::Error);
  EXPECT_EQ(d.error(), "not a ttrpc frame: message type 0x54 on stream 790644820 (1 request, 2 response, 3 data)");
  d.feed(encode_frame(1, MessageType::Request, 0, "late"));
  EXPECT_EQ(d.next(f), FrameDecoder::Result::Error);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_FALSE(d.finish());
}

TEST(TtrpcFrame, TypeZeroIsNotTtrpc) {
  FrameDecoder d;
  d.feed(std::string(kHeaderSize, '\0'));
  Frame f;
  EXPECT_EQ(d.next(f), FrameDecoder::Result::Error);
}

struct Spec {
  uint32_t id;
  uint8_t type;
  uint8_t flags;
  std::string payload;
};

RC_GTEST_PROP(TtrpcFrameProperty, RandomSplitsDecodeToTheSameFrames, ()) {
  const auto specs = *rc::gen::container<std::vector<Spec>>(rc::gen::construct<Spec>(
      rc::gen::arbitrary<uint32_t>(), rc::gen::inRange<uint8_t>(1, 4), rc::gen::arbitrary<uint8_t>(),
      rc::gen::container<std::string>(rc::gen::arbitrary<char>())));
  std::string stream;
  for (const auto& s : specs) stream += encode_frame(s.id, static_cast<MessageType>(s.type), s.flags, s.payload);
  const auto cuts = *rc::gen::container<std::vector<size_t>>(rc::gen::inRange<size_t>(0, stream.size() + 1));
  std::vector<size_t> points(cuts);
  points.push_back(0);
  points.push_back(stream.size());
  std::sort(points.begin(), points.end());

  FrameDecoder d;
  std::vector<Frame> got;
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    d.feed(std::string_view(stream).substr(points[i], points[i + 1] - points[i]));
    for (auto& f : decode_all(d)) got.push_back(std::move(f));
  }
  RC_ASSERT(d.error().empty());
  RC_ASSERT(d.finish());
  RC_ASSERT(got.size() == specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    RC_ASSERT(got[i].stream_id == specs[i].id);
    RC_ASSERT(static_cast<uint8_t>(got[i].type) == specs[i].type);
    RC_ASSERT(got[i].flags == specs[i].flags);
    RC_ASSERT(got[i].payload == specs[i].payload);
  }
}

RC_GTEST_PROP(TtrpcFrameProperty, RandomBytesYieldFramesThenAtMostOneError, (const std::string& bytes)) {
  // A small limit, so that random lengths are sometimes in range.
  constexpr uint32_t kLimit = 64;
  const auto chunk = *rc::gen::inRange<size_t>(1, 40);
  FrameDecoder d(kLimit);
  bool failed = false;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    d.feed(std::string_view(bytes).substr(at, chunk));
    for (;;) {
      Frame f;
      const auto r = d.next(f);
      if (r == FrameDecoder::Result::NeedMore) break;
      if (r == FrameDecoder::Result::Error) {
        RC_ASSERT(!d.error().empty());
        failed = true;
        break;
      }
      RC_ASSERT(!failed);  // nothing after an error
      if (r == FrameDecoder::Result::Frame) RC_ASSERT(f.payload.size() <= kLimit);
    }
    // Never more than one frame's worth held, whatever the input.
    RC_ASSERT(d.buffered() <= kHeaderSize + kLimit + chunk);
    if (failed) {
      Frame f;
      RC_ASSERT(d.next(f) == FrameDecoder::Result::Error);
    }
  }
  const bool clean = d.finish();
  RC_ASSERT(clean == d.error().empty());
}

}  // namespace
}  // namespace skiff::ttrpc
