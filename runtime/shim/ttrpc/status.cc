#include "runtime/shim/ttrpc/status.h"

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <system_error>

#include "base/config_error.h"
#include "runtime/sandbox/control_errors.h"
#include "runtime/shim/ttrpc/request.pb.h"

namespace skiff::ttrpc {
namespace {

// An Error carries its code as the kj::Exception's line, with this as its
// file: both survive every copy and move KJ makes of an exception.
constexpr const char* kStatusMarker = "ttrpc-status";

kj::Exception::Type kj_type(Code code) {
  switch (code) {
    case Code::Unimplemented:
      return kj::Exception::Type::UNIMPLEMENTED;
    case Code::Unavailable:
      return kj::Exception::Type::DISCONNECTED;
    case Code::ResourceExhausted:
      return kj::Exception::Type::OVERLOADED;
    default:
      return kj::Exception::Type::FAILED;
  }
}

Code errno_code(int err) {
  switch (err) {
    case ENOENT:
    case ESRCH:
    case ENODEV:
    case ENXIO:
      return Code::NotFound;
    case EEXIST:
      return Code::AlreadyExists;
    case EPERM:
    case EACCES:
    case EROFS:
      return Code::PermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG:
      return Code::InvalidArgument;
    case ENOSYS:
    case EOPNOTSUPP:
      return Code::Unimplemented;
    case ETIMEDOUT:
      return Code::DeadlineExceeded;
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
      return Code::ResourceExhausted;
    case EAGAIN:
    case EBUSY:
    case EPIPE:
    case ECONNRESET:
    case ECONNREFUSED:
    case ENOTCONN:
      return Code::Unavailable;
    case ECANCELED:
      return Code::Canceled;
    default:
      return Code::Unknown;
  }
}

}  // namespace

std::string code_name(Code code) {
  static constexpr const char* names[] = {"OK",
                                          "Canceled",
                                          "Unknown",
                                          "InvalidArgument",
                                          "DeadlineExceeded",
                                          "NotFound",
                                          "AlreadyExists",
                                          "PermissionDenied",
                                          "ResourceExhausted",
                                          "FailedPrecondition",
                                          "Aborted",
                                          "OutOfRange",
                                          "Unimplemented",
                                          "Internal",
                                          "Unavailable",
                                          "DataLoss",
                                          "Unauthenticated"};
  const auto n = static_cast<int32_t>(code);
  if (n >= 0 && n < static_cast<int32_t>(std::size(names))) return names[n];
  return "Code(" + std::to_string(n) + ")";
}

std::string Status::to_string() const { return "rpc error: code = " + code_name(code) + " desc = " + message; }

wire::Status to_proto(const Status& status) {
  wire::Status p;
  p.set_code(static_cast<int32_t>(status.code));
  p.set_message(status.message);
  return p;
}

Status from_proto(const wire::Status& status) {
  return Status{static_cast<Code>(status.code()), status.message()};
}

Error::Error(Code code, std::string_view message)
    : kj::Exception(kj_type(code), kj::str(kStatusMarker), static_cast<int>(code),
                    kj::heapString(message.data(), message.size())) {}

Code Error::code() const { return static_cast<Code>(getLine()); }

Status status_of(const kj::Exception& e) {
  if (std::strcmp(e.getFile(), kStatusMarker) == 0) {
    // A failure never answers OK, even one constructed saying so.
    const auto code = static_cast<Code>(e.getLine());
    return Status{code == Code::Ok ? Code::Unknown : code, e.getDescription().cStr()};
  }
  Code code = Code::Unknown;
  switch (e.getType()) {
    case kj::Exception::Type::UNIMPLEMENTED:
      code = Code::Unimplemented;
      break;
    case kj::Exception::Type::DISCONNECTED:
      code = Code::Unavailable;
      break;
    case kj::Exception::Type::OVERLOADED:
      code = Code::ResourceExhausted;
      break;
    default:
      break;
  }
  return Status{code, runtime::error_line(e)};
}

Status status_of(std::exception_ptr e) {
  if (!e) return Status{Code::Unknown, "no error given"};
  try {
    std::rethrow_exception(e);
  } catch (const kj::Exception& k) {  // an Error too
    return status_of(k);
  } catch (const ConfigError& x) {
    return Status{Code::InvalidArgument, x.what()};
  } catch (const std::system_error& x) {
    const auto& cat = x.code().category();
    const bool errno_like = cat == std::generic_category() || cat == std::system_category();
    return Status{errno_like ? errno_code(x.code().value()) : Code::Unknown, x.what()};
  } catch (const std::out_of_range& x) {
    return Status{Code::OutOfRange, x.what()};
  } catch (const std::invalid_argument& x) {
    return Status{Code::InvalidArgument, x.what()};
  } catch (const std::domain_error& x) {
    return Status{Code::InvalidArgument, x.what()};
  } catch (const std::length_error& x) {
    return Status{Code::InvalidArgument, x.what()};
  } catch (const std::logic_error& x) {
    return Status{Code::Internal, x.what()};
  } catch (const std::bad_alloc&) {
    return Status{Code::ResourceExhausted, "out of memory"};
  } catch (const std::exception& x) {
    return Status{Code::Unknown, x.what()};
  } catch (...) {
    return Status{Code::Unknown, "unknown error"};
  }
}

}  // namespace skiff::ttrpc
