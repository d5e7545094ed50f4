// `skiff boot`'s device specs: accepted forms and one-line errors.
#include "runtime/cli/device_specs.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(DeviceSpecs, Vsock) {
  auto v = parse_vsock("3");
  EXPECT_EQ(v.guest_cid, 3u);
  EXPECT_EQ(v.socket_path, "");
  v = parse_vsock("42,socket=/run/v.sock");
  EXPECT_EQ(v.guest_cid, 42u);
  EXPECT_EQ(v.socket_path, "/run/v.sock");
  EXPECT_EQ(error_of([] { parse_vsock("abc"); }), "--vsock abc: \"abc\" is not a CID (CID[,socket=PATH][,id=ID])");
  EXPECT_NE(error_of([] { parse_vsock("-3"); }), "");
  EXPECT_NE(error_of([] { parse_vsock(""); }), "");
  EXPECT_NE(error_of([] { parse_vsock("3,socket="); }), "");
  EXPECT_NE(error_of([] { parse_vsock("3,sock=x"); }), "");
  EXPECT_NE(error_of([] { parse_vsock("2"); }).find("reserved"), std::string::npos);
  EXPECT_NE(error_of([] { parse_vsock("4294967295"); }).find("reserved"), std::string::npos);
  EXPECT_EQ(parse_vsock("3,id=agent").id, "agent");
  EXPECT_NE(error_of([] { parse_vsock("3,id="); }), "");
}

TEST(DeviceSpecs, Disk) {
  auto d = parse_disk("/img");
  EXPECT_EQ(d.path, "/img");
  EXPECT_FALSE(d.read_only);
  EXPECT_EQ(d.id, "");  // the machine names it disk0, disk1...
  d = parse_disk("/img,ro,serial=abc,id=root");
  EXPECT_TRUE(d.read_only);
  EXPECT_EQ(d.serial, "abc");
  EXPECT_EQ(d.id, "root");
  EXPECT_EQ(error_of([] { parse_disk(",ro"); }), "--disk ,ro: no path (PATH[,ro][,serial=ID][,id=ID])");
  EXPECT_NE(error_of([] { parse_disk("/img,rw"); }), "");
  EXPECT_NE(error_of([] { parse_disk("/img,ro=1"); }), "");
  EXPECT_NE(error_of([] { parse_disk("/img,serial=" + std::string(21, 's')); }), "");
}

TEST(DeviceSpecs, Share) {
  auto s = parse_share("/srv,tag=root");
  EXPECT_EQ(s.path, "/srv");
  EXPECT_EQ(s.tag, "root");
  EXPECT_EQ(s.cache, ShareCache::Auto);
  EXPECT_EQ(s.dax_mib, 0u);
  s = parse_share("/srv,tag=root,ro,cache=always,writeback,no-xattr,queues=2,workers=8,id=rootfs");
  EXPECT_TRUE(s.read_only);
  EXPECT_EQ(s.cache, ShareCache::Always);
  EXPECT_TRUE(s.writeback);
  EXPECT_FALSE(s.xattr);
  EXPECT_EQ(s.queues, 2u);
  EXPECT_EQ(s.workers, 8u);
  EXPECT_EQ(s.id, "rootfs");
  EXPECT_EQ(parse_share("/srv,tag=x,cache=none").cache, ShareCache::None);
  EXPECT_EQ(error_of([] { parse_share("/srv"); }).rfind("--share /srv: tag= must be 1 to 36 bytes", 0), 0u);
  EXPECT_NE(error_of([] { parse_share("/srv,tag=" + std::string(37, 't')); }), "");
  EXPECT_NE(error_of([] { parse_share(",tag=x"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,cache=sometimes"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,queues=0"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,workers=65"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,rw"); }), "");
  EXPECT_EQ(parse_share("/srv,tag=x,dax").dax_mib, 256u);
  EXPECT_EQ(parse_share("/srv,tag=x,dax=512").dax_mib, 512u);
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,dax=3"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,dax=0"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,dax=lots"); }), "");
}

// An error is one line whatever the spec holds (found by the fuzzer: a
// newline in the path came back in the message).
TEST(DeviceSpecs, ErrorsStayOneLine) {
  EXPECT_EQ(error_of([] { parse_disk("/a\nb,bogus"); }), "--disk /a\\x0ab,bogus: unknown option \"bogus\" (PATH[,ro][,serial=ID][,id=ID])");
  EXPECT_EQ(error_of([] { parse_share("/srv,tag=x,\x01"); }).find('\x01'), std::string::npos);
}

// What the parser lets through, the device config's own check also accepts:
// the CLI and the control API agree on what a valid device is.
TEST(DeviceSpecs, ParsedSpecsPassTheDeviceCheck) {
  EXPECT_NO_THROW(validate(parse_disk("/img,ro,serial=" + std::string(20, 's'))));
  EXPECT_NO_THROW(validate(parse_share("/srv,tag=" + std::string(36, 't') + ",queues=64,workers=64,dax=65536")));
  EXPECT_NO_THROW(validate(parse_vsock("4294967294")));
}

TEST(DeviceConfig, RejectsWhatNoDeviceCanBe) {
  EXPECT_EQ(error_of([] { validate(DiskConfig{}); }), "disk (no id): no path");
  DiskConfig d;
  d.id = "d";
  d.path = "/img";
  d.queues = 0;
  EXPECT_EQ(error_of([&] { validate(d); }), "disk \"d\": queues must be 1 to 64");
  ShareConfig s;
  s.path = "/srv";
  EXPECT_EQ(error_of([&] { validate(s); }), "share (no id): tag must be 1 to 36 bytes");
  s.tag = "t";
  s.dax_mib = 3;
  EXPECT_NE(error_of([&] { validate(s); }).find("DAX window"), std::string::npos);
  VsockConfig v;
  v.guest_cid = 2;
  EXPECT_NE(error_of([&] { validate(v); }).find("reserved"), std::string::npos);
  EXPECT_EQ(kind_of(DeviceConfig{v}), DeviceKind::Vsock);
  EXPECT_EQ(to_string(kind_of(DeviceConfig{s})), "share");
}

}  // namespace
}  // namespace skiff::cli
