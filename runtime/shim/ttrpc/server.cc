#include "runtime/shim/ttrpc/server.h"

#include <list>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/log.h"
#include "runtime/control/peer_credentials.h"
#include "runtime/sandbox/control_errors.h"
#include "runtime/shim/ttrpc/frame_stream.h"
#include "runtime/shim/ttrpc/request.pb.h"

namespace skiff::ttrpc {
namespace {

constexpr std::string_view kComponent = "ttrpc";

std::string line(const kj::Exception& e) { return runtime::error_line(e); }

class LogErrors final : public kj::TaskSet::ErrorHandler {
 public:
  explicit LogErrors(const char* what) : what_(what) {}
  void taskFailed(kj::Exception&& e) override { log::error(kComponent, what_, {{"error", line(e)}}); }

 private:
  const char* what_;
};

}  // namespace

class Server::Impl {
 public:
  class Connection;

  Impl(kj::LowLevelAsyncIoProvider& io, kj::Timer& timer, ServiceSet services, ServerOptions options)
      : io_(io), timer_(timer), services_(std::move(services)), options_(options) {}
  ~Impl();

  void listen(UniqueFd fd);
  void serve(kj::Own<kj::AsyncIoStream> stream);
  kj::Promise<void> shutdown();

  kj::Timer& timer() { return timer_; }
  const ServiceSet& services() const { return services_; }
  const ServerOptions& options() const { return options_; }
  size_t connections() const { return connections_.size(); }

  std::vector<UnixAddress> created_;  // socket files to remove at the end

 private:
  kj::Promise<void> accept_loop(kj::ConnectionReceiver& listener);
  void erase(std::list<kj::Own<Connection>>::iterator it);

  kj::LowLevelAsyncIoProvider& io_;
  kj::Timer& timer_;
  ServiceSet services_;
  ServerOptions options_;
  bool draining_ = false;
  std::list<kj::Own<Connection>> connections_;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> shutdown_waiters_;
  LogErrors connection_errors_{"a ttrpc connection task failed"};
  // Each connection's run(): they use the connections, so ~Impl destroys
  // these before those.
  kj::Own<kj::TaskSet> connection_tasks_ = kj::heap<kj::TaskSet>(connection_errors_);
  // Listeners after the tasks that accept on them: destroyed first.
  std::vector<kj::Own<kj::ConnectionReceiver>> listeners_;
  LogErrors accept_errors_{"a ttrpc listener stopped accepting"};
  kj::Own<kj::TaskSet> accepting_ = kj::heap<kj::TaskSet>(accept_errors_);
};

// One client's connection: reads requests, runs each, writes each answer.
class Server::Impl::Connection {
 public:
  Connection(Impl& server, kj::Own<kj::AsyncIoStream> stream)
      : server_(server), stream_(kj::mv(stream)), reader_(*stream_, server.options().max_message), writer_(*stream_) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    closed_ = kj::mv(paf.promise);
    closer_ = kj::mv(paf.fulfiller);
  }

  // Until the peer closes (or breaks the protocol), a write fails, or close().
  kj::Promise<void> run() {
    return read_loop().exclusiveJoin(writer_.failure()).exclusiveJoin(kj::mv(closed_));
  }
  void close() { closer_->fulfill(); }
  // Closes the connection once it is idle (Server::shutdown).
  void drain() {
    draining_ = until_idle().then([this] { close(); }).eagerlyEvaluate(nullptr);
  }

  // Resolves once no call is running and every answer is written.
  kj::Promise<void> until_idle() {
    if (active_ > 0) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      idle_waiters_.push_back(kj::mv(paf.fulfiller));
      return paf.promise.then([this] { return until_idle(); });
    }
    if (!writer_.idle()) return writer_.drained().then([this] { return until_idle(); });
    return kj::READY_NOW;
  }

 private:
  kj::Promise<void> read_loop() {
    if (active_ >= server_.options().max_in_flight) {
      // Back-pressure: read on once a call has answered.
      auto paf = kj::newPromiseAndFulfiller<void>();
      slot_ = kj::mv(paf.fulfiller);
      return paf.promise.then([this] { return read_loop(); });
    }
    return reader_.next().then([this](FrameReader::Event ev) -> kj::Promise<void> {
      switch (ev.kind) {
        case FrameReader::Event::Kind::End:
          return kj::READY_NOW;
        case FrameReader::Event::Kind::Oversized:
          ++active_;
          answer(ev.oversized.stream_id,
                 Reply{Status{Code::ResourceExhausted, "message length " + std::to_string(ev.oversized.length) +
                                                           " exceed maximum message size of " +
                                                           std::to_string(server_.options().max_message)},
                       nullptr});
          break;
        case FrameReader::Event::Kind::Frame:
          if (ev.frame.type == MessageType::Request) {
            start(kj::mv(ev.frame));
          } else {
            log::debug(kComponent, "ignored a frame that is not a request",
                       {{"type", message_type_name(static_cast<uint8_t>(ev.frame.type))},
                        {"stream", static_cast<uint64_t>(ev.frame.stream_id)}});
          }
          break;
      }
      return read_loop();
    });
  }

  void start(Frame frame) {
    ++active_;
    const uint32_t id = frame.stream_id;
    wire::Request req;
    if (!req.ParseFromString(frame.payload))
      return answer(id, Reply{Status{Code::InvalidArgument, "unmarshal request error: not a ttrpc Request (" +
                                                                std::to_string(frame.payload.size()) + " bytes)"},
                              {}});
    if (id % 2 != 1)
      return answer(id, Reply{Status{Code::InvalidArgument, "StreamID must be odd for client initiated streams"}, nullptr});
    auto ctx = kj::heap<CallContext>();
    ctx->service = req.service();
    ctx->method = req.method();
    ctx->stream_id = id;
    ctx->timeout = std::chrono::nanoseconds(req.timeout_nano());
    for (const auto& kv : req.metadata()) ctx->metadata.emplace_back(kv.key(), kv.value());
    if (req.timeout_nano() < 0)  // already past, as Go's context.WithTimeout sees it
      return answer(id, Reply{Status{Code::DeadlineExceeded, "context deadline exceeded"}, nullptr});
    kj::Promise<Reply> reply = server_.services().call(*ctx, to_payload(req.payload()));
    if (req.timeout_nano() > 0) {
      reply = reply.exclusiveJoin(server_.timer().afterDelay(req.timeout_nano() * kj::NANOSECONDS).then([] {
        return Reply{Status{Code::DeadlineExceeded, "context deadline exceeded"}, nullptr};
      }));
    }
    calls_.add(reply.attach(kj::mv(ctx)).then([this, id](Reply r) { answer(id, std::move(r)); }));
  }

  // Writes the answer to one call (counted in active_) and counts it done.
  void answer(uint32_t id, Reply reply) {
    wire::Response resp;
    // An OK answer carries an empty status too, as Go's (status.Proto() of OK).
    *resp.mutable_status() = to_proto(reply.status);
    if (reply.status.ok()) resp.set_payload(reply.payload.begin(), reply.payload.size());
    std::string bytes = resp.SerializeAsString();
    if (bytes.size() > server_.options().max_message) {
      // No client would read it: say so instead.
      wire::Response refused;
      *refused.mutable_status() = to_proto(
          Status{Code::ResourceExhausted, "response of " + std::to_string(bytes.size()) +
                                              " bytes exceeds the maximum message size of " +
                                              std::to_string(server_.options().max_message)});
      bytes = refused.SerializeAsString();
    }
    writer_.send(encode_frame(id, MessageType::Response, 0, bytes, server_.options().max_message));
    --active_;
    KJ_IF_MAYBE(s, slot_) {
      (*s)->fulfill();
      slot_ = nullptr;
    }
    if (active_ == 0) {
      for (auto& w : idle_waiters_) w->fulfill();
      idle_waiters_.clear();
    }
  }

  Impl& server_;
  kj::Own<kj::AsyncIoStream> stream_;
  FrameReader reader_;
  FrameWriter writer_;
  size_t active_ = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> slot_;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> idle_waiters_;
  kj::Promise<void> closed_ = nullptr;  // run() takes it
  kj::Own<kj::PromiseFulfiller<void>> closer_;
  kj::Promise<void> draining_ = nullptr;
  LogErrors call_errors_{"a ttrpc call failed outside its handler"};
  // Last: destroyed first, cancelling the handlers before what they use goes.
  kj::TaskSet calls_{call_errors_};
};

Server::Impl::~Impl() {
  accepting_ = nullptr;
  listeners_.clear();
  connection_tasks_ = nullptr;
  connections_.clear();
  for (const auto& a : created_) {
    try {
      remove_socket(a);
    } catch (const std::exception& e) {
      log::warn(kComponent, "could not remove the socket", {{"error", std::string(e.what())}});
    }
  }
}

void Server::Impl::listen(UniqueFd fd) {
  if (draining_) throw std::logic_error("ttrpc server is shutting down");
  listeners_.push_back(io_.wrapListenSocketFd(fd.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP));
  accepting_->add(accept_loop(*listeners_.back()));
}

kj::Promise<void> Server::Impl::accept_loop(kj::ConnectionReceiver& listener) {
  return listener.accept().then(
      [this, &listener](kj::Own<kj::AsyncIoStream> conn) {
        if (runtime::peer_allowed(*conn, kComponent)) serve(kj::mv(conn));
        return accept_loop(listener);
      },
      [this, &listener](kj::Exception&& e) {
        // EMFILE and the like pass; don't spin on them.
        log::warn(kComponent, "accept failed; retrying in 100 ms", {{"error", line(e)}});
        return timer_.afterDelay(100 * kj::MILLISECONDS).then([this, &listener] { return accept_loop(listener); });
      });
}

void Server::Impl::serve(kj::Own<kj::AsyncIoStream> stream) {
  connections_.push_back(kj::heap<Connection>(*this, kj::mv(stream)));
  auto it = std::prev(connections_.end());
  // Erased a turn later, once nothing of its run() is left on the stack.
  connection_tasks_->add((*it)->run()
                             .then([] {},
                                   [](kj::Exception&& e) {
                                     log::warn(kComponent, "closed a ttrpc connection", {{"reason", line(e)}});
                                   })
                             .then([this, it] { return kj::evalLater([this, it] { erase(it); }); }));
  if (draining_) (*it)->drain();
}

void Server::Impl::erase(std::list<kj::Own<Connection>>::iterator it) {
  // Destroying it cancels its handlers and closes the stream.
  connections_.erase(it);
  if (connections_.empty() && draining_) {
    for (auto& w : shutdown_waiters_) w->fulfill();
    shutdown_waiters_.clear();
  }
}

kj::Promise<void> Server::Impl::shutdown() {
  if (!draining_) {
    draining_ = true;
    accepting_ = nullptr;
    listeners_.clear();
    for (auto& c : connections_) c->drain();
  }
  if (connections_.empty()) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  shutdown_waiters_.push_back(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

Server::Server(kj::LowLevelAsyncIoProvider& io, kj::Timer& timer, ServiceSet services, ServerOptions options)
    : impl_(kj::heap<Impl>(io, timer, std::move(services), options)) {}

Server::~Server() = default;

void Server::listen(const UnixAddress& address) {
  impl_->listen(listen_unix(address));
  if (address.kind == UnixAddress::Kind::Path) impl_->created_.push_back(address);
}

void Server::listen(UniqueFd listening_socket) { impl_->listen(std::move(listening_socket)); }

void Server::serve(kj::Own<kj::AsyncIoStream> connection) { impl_->serve(kj::mv(connection)); }

kj::Promise<void> Server::shutdown() { return impl_->shutdown(); }

size_t Server::connections() const { return impl_->connections(); }

const ServiceSet& Server::services() const { return impl_->services(); }

}  // namespace skiff::ttrpc
