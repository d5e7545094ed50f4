#include "runtime/shim/ttrpc/client.h"

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "base/log.h"
#include "base/sys_error.h"
#include "runtime/sandbox/control_errors.h"
#include "runtime/shim/ttrpc/frame_stream.h"
#include "runtime/shim/ttrpc/request.pb.h"

namespace skiff::ttrpc {
namespace {

constexpr std::string_view kComponent = "ttrpc";
constexpr uint64_t kLastStreamId = UINT32_MAX;

}  // namespace

class Client::Impl {
 public:
  // The calls waiting for an answer. Shared with each call's promise, which
  // removes its entry when dropped (cancelled or timed out), whichever of it
  // and the Impl goes first.
  struct Calls : kj::Refcounted {
    std::map<uint32_t, kj::Own<kj::PromiseFulfiller<Payload>>> pending;
  };

  Impl(kj::Own<kj::AsyncIoStream> stream, kj::Timer& timer, uint32_t max_message)
      : stream_(kj::mv(stream)),
        timer_(timer),
        max_message_(max_message),
        reader_(*stream_, max_message),
        writer_(*stream_),
        calls_(kj::refcounted<Calls>()) {
    reading_ = read_loop()
                   .exclusiveJoin(writer_.failure())
                   .then([this] { fail("the server closed the connection"); },
                         [this](kj::Exception&& e) { fail(runtime::error_line(e)); })
                   .eagerlyEvaluate(nullptr);
  }

  ~Impl() {
    reading_ = nullptr;  // it uses the stream: gone first
    reject_all(Code::Canceled, "ttrpc: client closed");
  }

  kj::Promise<Payload> call(std::string_view service, std::string_view method, kj::ArrayPtr<const kj::byte> payload,
                            CallOptions options) {
    if (!broken_.empty()) return Error(Code::Unavailable, "ttrpc: connection closed: " + broken_);
    if (next_id_ > kLastStreamId)
      return Error(Code::ResourceExhausted, "ttrpc: this connection has used every stream id; connect again");
    const auto id = static_cast<uint32_t>(next_id_);
    next_id_ += 2;

    wire::Request req;
    req.set_service(std::string(service));
    req.set_method(std::string(method));
    req.set_payload(payload.begin(), payload.size());
    req.set_timeout_nano(options.timeout.count());
    for (auto& [k, v] : options.metadata) {
      auto* kv = req.add_metadata();
      kv->set_key(k);
      kv->set_value(v);
    }
    std::string bytes = req.SerializeAsString();
    if (bytes.size() > max_message_)
      return Error(Code::ResourceExhausted, "ttrpc: request of " + std::to_string(bytes.size()) +
                                                " bytes exceeds the maximum message size of " +
                                                std::to_string(max_message_));
    auto paf = kj::newPromiseAndFulfiller<Payload>();
    calls_->pending.emplace(id, kj::mv(paf.fulfiller));
    writer_.send(encode_frame(id, MessageType::Request, 0, bytes, max_message_));
    auto answer = paf.promise.attach(kj::defer([calls = kj::addRef(*calls_), id]() mutable { calls->pending.erase(id); }));
    if (options.timeout.count() > 0) {
      answer = answer.exclusiveJoin(
          timer_.afterDelay(options.timeout.count() * kj::NANOSECONDS).then([]() -> Payload {
            throw Error(Code::DeadlineExceeded, "context deadline exceeded");
          }));
    }
    return answer;
  }

  bool connected() const { return broken_.empty(); }
  const std::string& reason() const { return broken_; }
  size_t pending() const { return calls_->pending.size(); }

 private:
  kj::Promise<void> read_loop() {
    return reader_.next().then([this](FrameReader::Event ev) -> kj::Promise<void> {
      switch (ev.kind) {
        case FrameReader::Event::Kind::End:
          return kj::READY_NOW;
        case FrameReader::Event::Kind::Oversized:
          if (auto f = take(ev.oversized.stream_id))
            (*f)->reject(Error(Code::ResourceExhausted, "message length " + std::to_string(ev.oversized.length) +
                                                            " exceed maximum message size of " +
                                                            std::to_string(max_message_)));
          break;
        case FrameReader::Event::Kind::Frame:
          deliver(kj::mv(ev.frame));
          break;
      }
      return read_loop();
    });
  }

  // The waiting call with this stream id, taken out of the table.
  std::optional<kj::Own<kj::PromiseFulfiller<Payload>>> take(uint32_t id) {
    auto it = calls_->pending.find(id);
    if (it == calls_->pending.end()) {
      // A call that timed out or was cancelled, or a confused server; Go's
      // client logs these too.
      log::debug(kComponent, "an answer for no waiting call", {{"stream", static_cast<uint64_t>(id)}});
      return std::nullopt;
    }
    auto f = kj::mv(it->second);
    calls_->pending.erase(it);
    return f;
  }

  void deliver(Frame frame) {
    auto f = take(frame.stream_id);
    if (!f) return;
    if (frame.type != MessageType::Response)
      return (*f)->reject(Error(Code::Internal, "ttrpc: unknown message type received: " +
                                                    message_type_name(static_cast<uint8_t>(frame.type))));
    wire::Response resp;
    if (!resp.ParseFromString(frame.payload))
      return (*f)->reject(Error(Code::Internal, "ttrpc: the answer on stream " + std::to_string(frame.stream_id) +
                                                    " is not a ttrpc Response"));
    if (resp.has_status() && resp.status().code() != 0) {
      const Status st = from_proto(resp.status());
      return (*f)->reject(Error(st.code, st.message));
    }
    (*f)->fulfill(to_payload(resp.payload()));
  }

  void fail(std::string why) {
    if (broken_.empty()) broken_ = why.empty() ? "closed" : std::move(why);
    reject_all(Code::Unavailable, "ttrpc: connection closed: " + broken_);
  }

  void reject_all(Code code, const std::string& message) {
    auto pending = std::exchange(calls_->pending, {});
    for (auto& [id, f] : pending) f->reject(Error(code, message));
  }

  kj::Own<kj::AsyncIoStream> stream_;
  kj::Timer& timer_;
  uint32_t max_message_;
  FrameReader reader_;
  FrameWriter writer_;
  kj::Own<Calls> calls_;
  uint64_t next_id_ = 1;  // odd: client-initiated streams
  std::string broken_;
  kj::Promise<void> reading_ = nullptr;
};

Client::Client(kj::Own<kj::AsyncIoStream> stream, kj::Timer& timer, uint32_t max_message)
    : impl_(kj::heap<Impl>(kj::mv(stream), timer, max_message)) {}

Client::~Client() = default;

kj::Promise<kj::Own<Client>> Client::connect(kj::LowLevelAsyncIoProvider& io, kj::Timer& timer,
                                             const UnixAddress& address) {
  const std::string where = address.describe();
  return kj::evalNow([&]() {
           sockaddr_un sa{};
           const socklen_t len = address.to_sockaddr(sa);
           const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
           if (fd < 0) throw_errno("socket");
           // kj connects (and owns the fd) before this returns.
           return io.wrapConnectingSocketFd(fd, reinterpret_cast<const sockaddr*>(&sa), len,
                                            kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC |
                                                kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
         })
      .then([&timer](kj::Own<kj::AsyncIoStream> s) { return kj::heap<Client>(kj::mv(s), timer); },
            [where](kj::Exception&& e) -> kj::Own<Client> {
              throw Error(Code::Unavailable, "connect to " + where + ": " + runtime::error_line(e));
            });
}

kj::Promise<Payload> Client::call(std::string_view service, std::string_view method,
                                  kj::ArrayPtr<const kj::byte> request, CallOptions options) {
  return impl_->call(service, method, request, std::move(options));
}

bool Client::connected() const { return impl_->connected(); }
std::string Client::disconnect_reason() const { return impl_->reason(); }
size_t Client::pending() const { return impl_->pending(); }

namespace detail {

void throw_bad_response(std::string_view service, std::string_view method, std::string_view type) {
  throw Error(Code::Internal, "ttrpc: the answer to " + std::string(service) + "/" + std::string(method) +
                                  " is not a valid " + std::string(type));
}

}  // namespace detail
}  // namespace skiff::ttrpc
