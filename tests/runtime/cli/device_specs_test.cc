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
  EXPECT_EQ(error_of([] { parse_vsock("abc"); }), "--vsock abc: \"abc\" is not a CID (CID[,socket=PATH])");
  EXPECT_NE(error_of([] { parse_vsock("-3"); }), "");
  EXPECT_NE(error_of([] { parse_vsock(""); }), "");
  EXPECT_NE(error_of([] { parse_vsock("3,socket="); }), "");
  EXPECT_NE(error_of([] { parse_vsock("3,sock=x"); }), "");
}

TEST(DeviceSpecs, Disk) {
  EXPECT_NO_THROW(parse_disk("/img"));
  EXPECT_NO_THROW(parse_disk("/img,ro,serial=abc"));
  EXPECT_EQ(error_of([] { parse_disk(",ro"); }), "--disk ,ro: no path (PATH[,ro][,serial=ID])");
  EXPECT_NE(error_of([] { parse_disk("/img,rw"); }), "");
  EXPECT_NE(error_of([] { parse_disk("/img,ro=1"); }), "");
  EXPECT_NE(error_of([] { parse_disk("/img,serial=" + std::string(21, 's')); }), "");
}

TEST(DeviceSpecs, Share) {
  EXPECT_NO_THROW(parse_share("/srv,tag=root"));
  EXPECT_NO_THROW(parse_share("/srv,tag=root,ro,cache=always,writeback,no-xattr,queues=2,workers=8"));
  EXPECT_EQ(error_of([] { parse_share("/srv"); }).rfind("--share /srv: tag= must be 1 to 36 bytes", 0), 0u);
  EXPECT_NE(error_of([] { parse_share("/srv,tag=" + std::string(37, 't')); }), "");
  EXPECT_NE(error_of([] { parse_share(",tag=x"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,cache=sometimes"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,queues=0"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,workers=65"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,rw"); }), "");
  EXPECT_NO_THROW(parse_share("/srv,tag=x,dax"));
  EXPECT_NO_THROW(parse_share("/srv,tag=x,dax=512"));
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,dax=3"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,dax=0"); }), "");
  EXPECT_NE(error_of([] { parse_share("/srv,tag=x,dax=lots"); }), "");
}

}  // namespace
}  // namespace skiff::cli
