// ttrpc statuses: gRPC's names and error text, the wire form, and what each
// kind of C++ failure answers, thrown directly or from deep in a KJ promise.
#include "runtime/shim/ttrpc/status.h"

#include <gtest/gtest.h>
#include <kj/async.h>

#include <future>
#include <new>
#include <stdexcept>
#include <system_error>

#include "base/config_error.h"
#include "runtime/shim/ttrpc/request.pb.h"

namespace skiff::ttrpc {
namespace {

template <typename E>
Status status_of_thrown(E e) {
  return status_of(std::make_exception_ptr(e));
}

TEST(TtrpcStatus, NamesAreGrpcGos) {
  EXPECT_EQ(code_name(Code::Ok), "OK");
  EXPECT_EQ(code_name(Code::NotFound), "NotFound");
  EXPECT_EQ(code_name(Code::FailedPrecondition), "FailedPrecondition");
  EXPECT_EQ(code_name(Code::Unauthenticated), "Unauthenticated");
  EXPECT_EQ(code_name(static_cast<Code>(99)), "Code(99)");
  EXPECT_EQ((Status{Code::NotFound, "container c1"}).to_string(), "rpc error: code = NotFound desc = container c1");
}

TEST(TtrpcStatus, ProtoRoundTrip) {
  const Status s{Code::Unimplemented, "method Foo"};
  const auto p = to_proto(s);
  EXPECT_EQ(p.code(), 12);
  EXPECT_EQ(p.message(), "method Foo");
  EXPECT_EQ(from_proto(p), s);
  wire::Status odd;
  odd.set_code(77);
  EXPECT_EQ(static_cast<int>(from_proto(odd).code), 77);
  // Any bytes, as Go sends them: a message quoting a peer's odd name.
  const Status raw{Code::Unimplemented, "service \xff\xfe"};
  wire::Status back;
  ASSERT_TRUE(back.ParseFromString(to_proto(raw).SerializeAsString()));
  EXPECT_EQ(from_proto(back), raw);
}

TEST(TtrpcStatus, AnErrorKeepsItsCode) {
  const Error e(Code::FailedPrecondition, "container c1 is not running");
  EXPECT_EQ(e.code(), Code::FailedPrecondition);
  EXPECT_STREQ(e.what(), "container c1 is not running");
  EXPECT_EQ(status_of_thrown(e), (Status{Code::FailedPrecondition, "container c1 is not running"}));
}

TEST(TtrpcStatus, AnErrorKeepsItsCodeThroughKjPromises) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  kj::Promise<int> p = kj::evalLater([]() -> int { throw Error(Code::NotFound, "no such process 7"); })
                           .then([](int v) { return v + 1; })
                           .attach(kj::heap<int>(0));
  try {
    p.wait(ws);
    FAIL() << "no exception";
  } catch (const kj::Exception& e) {
    EXPECT_EQ(status_of(e), (Status{Code::NotFound, "no such process 7"}));
  }
}

TEST(TtrpcStatus, AnErrorSaysOkIsStillAFailure) {
  EXPECT_EQ(status_of_thrown(Error(Code::Ok, "odd")).code, Code::Unknown);
}

TEST(TtrpcStatus, StandardExceptionsMapAsGoErrorsDo) {
  EXPECT_EQ(status_of_thrown(std::invalid_argument("bad id")), (Status{Code::InvalidArgument, "bad id"}));
  EXPECT_EQ(status_of_thrown(ConfigError("memory_mib 0")), (Status{Code::InvalidArgument, "memory_mib 0"}));
  EXPECT_EQ(status_of_thrown(std::out_of_range("pid")).code, Code::OutOfRange);
  EXPECT_EQ(status_of_thrown(std::logic_error("bug")).code, Code::Internal);
  EXPECT_EQ(status_of_thrown(std::runtime_error("boom")), (Status{Code::Unknown, "boom"}));
  EXPECT_EQ(status_of_thrown(std::bad_alloc()).code, Code::ResourceExhausted);
  EXPECT_EQ(status_of(std::make_exception_ptr(42)).code, Code::Unknown);
  EXPECT_EQ(status_of(std::exception_ptr()).code, Code::Unknown);
}

TEST(TtrpcStatus, SystemErrorsMapByErrno) {
  auto code = [](int err) {
    return status_of_thrown(std::system_error(err, std::generic_category(), "open x")).code;
  };
  EXPECT_EQ(code(ENOENT), Code::NotFound);
  EXPECT_EQ(code(ESRCH), Code::NotFound);
  EXPECT_EQ(code(EEXIST), Code::AlreadyExists);
  EXPECT_EQ(code(EACCES), Code::PermissionDenied);
  EXPECT_EQ(code(EPERM), Code::PermissionDenied);
  EXPECT_EQ(code(EINVAL), Code::InvalidArgument);
  EXPECT_EQ(code(ENOSYS), Code::Unimplemented);
  EXPECT_EQ(code(ETIMEDOUT), Code::DeadlineExceeded);
  EXPECT_EQ(code(ENOSPC), Code::ResourceExhausted);
  EXPECT_EQ(code(EPIPE), Code::Unavailable);
  EXPECT_EQ(code(ECANCELED), Code::Canceled);
  EXPECT_EQ(code(EIO), Code::Unknown);
  const auto s = status_of_thrown(std::system_error(ENOENT, std::system_category(), "open /run/x"));
  EXPECT_EQ(s.message, "open /run/x: No such file or directory");
  // Not an errno: its number means nothing here.
  EXPECT_EQ(status_of_thrown(std::system_error(std::make_error_code(std::future_errc::no_state))).code,
            Code::Unknown);
}

TEST(TtrpcStatus, KjExceptionsMapByType) {
  auto kj_status = [](kj::Exception::Type t, const char* d) {
    return status_of(kj::Exception(t, __FILE__, __LINE__, kj::str(d)));
  };
  EXPECT_EQ(kj_status(kj::Exception::Type::UNIMPLEMENTED, "nope").code, Code::Unimplemented);
  EXPECT_EQ(kj_status(kj::Exception::Type::DISCONNECTED, "gone").code, Code::Unavailable);
  EXPECT_EQ(kj_status(kj::Exception::Type::OVERLOADED, "busy").code, Code::ResourceExhausted);
  // KJ's wrapper around a std::exception thrown in a continuation is not shown.
  EXPECT_EQ(kj_status(kj::Exception::Type::FAILED, "std::exception: disk full"), (Status{Code::Unknown, "disk full"}));
}

TEST(TtrpcStatus, AStdExceptionInAContinuationKeepsItsMessage) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  auto p = kj::evalLater([] { throw std::invalid_argument("bad spec"); });
  try {
    p.wait(ws);
    FAIL() << "no exception";
  } catch (const kj::Exception& e) {
    // Its type is gone (KJ keeps only the text): Unknown, as documented.
    EXPECT_EQ(status_of(e), (Status{Code::Unknown, "bad spec"}));
  }
}

}  // namespace
}  // namespace skiff::ttrpc
