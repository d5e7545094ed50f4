#pragma once
// What a ttrpc call ends with: a google.rpc.Status, the gRPC code and a
// message (containerd turns the code back into its errdefs: NotFound is
// errdefs.ErrNotFound, FailedPrecondition ErrFailedPrecondition, ...).
//
// A handler fails by throwing, synchronously or inside its promise:
//   throw ttrpc::Error(ttrpc::Code::NotFound, "container " + id);
// Error is a kj::Exception that keeps its code through KJ's promise
// machinery (KJ turns any other thrown type into a plain kj::Exception, its
// type lost), and a std::exception for code that only knows those. Other
// exceptions are mapped by status_of() below.
#include <kj/exception.h>

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace skiff::ttrpc::wire {
class Status;
}

namespace skiff::ttrpc {

// google.golang.org/grpc/codes, same numbers.
enum class Code : int32_t {
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
};
// As grpc-go's Code.String() prints it ("NotFound"); "Code(99)" for others.
std::string code_name(Code code);

struct Status {
  Code code = Code::Ok;
  std::string message;

  bool ok() const { return code == Code::Ok; }
  // As grpc-go prints a status error: "rpc error: code = NotFound desc = ...".
  std::string to_string() const;
  bool operator==(const Status&) const = default;
};

// google.rpc.Status as ttrpc's Response carries it (request.proto says why
// not google::rpc::Status itself).
wire::Status to_proto(const Status& status);
// A code outside 0..16 stays as it is: the peer said it.
Status from_proto(const wire::Status& status);

class Error : public kj::Exception, public std::exception {
 public:
  Error(Code code, std::string_view message);
  Code code() const;
  std::string message() const { return getDescription().cStr(); }
  const char* what() const noexcept override { return getDescription().cStr(); }
};

// The status a failure answers with. An Error (or a kj::Exception that was
// one) keeps its code; otherwise, as Go's ttrpc maps a Go error:
//   std::invalid_argument, std::domain_error, std::length_error, ConfigError  InvalidArgument
//   std::out_of_range                                                           OutOfRange
//   std::system_error: ENOENT ESRCH ENODEV NotFound, EEXIST AlreadyExists, EPERM EACCES EROFS
//     PermissionDenied, EINVAL InvalidArgument, ENOSYS EOPNOTSUPP Unimplemented, ETIMEDOUT
//     DeadlineExceeded, ENOMEM ENOSPC EMFILE ENFILE ResourceExhausted, EAGAIN EBUSY EPIPE
//     ECONNRESET ECONNREFUSED ENOTCONN Unavailable, ECANCELED Canceled, others Unknown
//   std::bad_alloc ResourceExhausted; another std::logic_error Internal (our bug)
//   a kj::Exception by its type: UNIMPLEMENTED Unimplemented, DISCONNECTED
//     Unavailable, OVERLOADED ResourceExhausted, FAILED Unknown
//   anything else Unknown (Go's default)
// The message is the exception's one line, without KJ's "std::exception: " prefix.
Status status_of(const kj::Exception& e);
Status status_of(std::exception_ptr e);

}  // namespace skiff::ttrpc
