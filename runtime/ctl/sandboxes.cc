#include "runtime/ctl/sandboxes.h"

#include <filesystem>
#include <optional>
#include <stdexcept>

#include "base/config_error.h"

namespace skiff::runtime::ctl {
namespace {

// StateStore creates a missing root; a reader must not, so look first.
std::optional<StateStore> open_store(const std::string& root) {
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return std::nullopt;
  return StateStore(root);
}

SandboxRef ref_of(const StateStore& store, ContainerState st) {
  SandboxRef ref;
  ref.id = st.id;
  ref.alive = st.sandbox_pid > 0 && process_alive(st.sandbox_pid, st.sandbox_start_time);
  ref.socket = st.control_socket.empty() ? store.dir_of(st.id) + "/control.sock" : st.control_socket;
  ref.state = std::move(st);
  return ref;
}

}  // namespace

std::vector<SandboxRef> list_sandboxes(const std::string& root) {
  std::vector<SandboxRef> out;
  auto store = open_store(root);
  if (!store) return out;
  for (const auto& id : store->list()) {
    try {
      auto st = store->load(id);
      if (st) out.push_back(ref_of(*store, std::move(*st)));
    } catch (const std::exception& e) {
      SandboxRef bad;
      bad.id = id;
      bad.load_error = e.what();
      out.push_back(std::move(bad));
    }
  }
  return out;
}

SandboxRef find_sandbox(const std::string& root, const std::string& id) {
  StateStore::check_id(id);
  auto store = open_store(root);
  std::optional<ContainerState> st;
  if (store) st = store->load(id);
  if (!st) throw ConfigError("no sandbox \"" + id + "\" under " + root);
  return ref_of(*store, std::move(*st));
}

std::unique_ptr<ControlClient> connect(const SandboxRef& sandbox) {
  if (!sandbox.alive) throw std::runtime_error("sandbox \"" + sandbox.id + "\" is not running: its sandbox process is gone");
  return std::make_unique<ControlClient>(sandbox.socket);
}

}  // namespace skiff::runtime::ctl
