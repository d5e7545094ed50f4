#include "base/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "skiff_version.h"

namespace skiff::log {
namespace {

TEST(Log, LineCarriesTheContextFieldsInOrder) {
  Logger logger;
  logger.set_sandbox("sb-1");
  auto line = logger.format(Level::Warn, "vmm", "vm exited", {{"reason", std::string("reset")}, {"vcpus", uint64_t{2}},
                                                               {"ok", false}, {"delta", int64_t{-3}}},
                            "ctr-9", "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(line, std::string("{\"time\":\"2026-01-01T00:00:00.000000Z\",\"level\":\"warn\",\"component\":\"vmm\","
                              "\"sandbox\":\"sb-1\",\"container\":\"ctr-9\",\"version\":\"") +
                      SKIFF_VERSION + "\",\"commit\":\"" + SKIFF_COMMIT +
                      "\",\"msg\":\"vm exited\",\"reason\":\"reset\",\"vcpus\":2,\"ok\":false,\"delta\":-3}\n");
}

TEST(Log, StringsAreEscaped) {
  EXPECT_EQ(json_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(Log, LevelFilterAndDestination) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Logger logger;
  EXPECT_FALSE(logger.enabled(Level::Error));  // no destination yet
  logger.use_fd(fds[1]);
  logger.set_level(Level::Warn);
  EXPECT_FALSE(logger.enabled(Level::Info));
  logger.write(Level::Info, "vmm", "dropped");
  logger.write(Level::Error, "vmm", "kept");
  close(fds[1]);
  char buf[1024];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  ASSERT_GT(n, 0);
  std::string out(buf, static_cast<size_t>(n));
  EXPECT_EQ(out.find("dropped"), std::string::npos);
  EXPECT_NE(out.find("\"msg\":\"kept\""), std::string::npos);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

TEST(Log, ParseLevel) {
  EXPECT_EQ(parse_level("debug"), Level::Debug);
  EXPECT_EQ(parse_level("error"), Level::Error);
  EXPECT_THROW(parse_level("loud"), std::invalid_argument);
}

}  // namespace
}  // namespace skiff::log
