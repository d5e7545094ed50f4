#pragma once
// The sandboxes under a state root as skiffctl finds them: each sandbox
// process's <root>/<id>/state.json (the sandbox id is the id `skiff create`
// was given), and a client of its control socket.
#include <memory>
#include <string>
#include <vector>

#include "runtime/control/control_client.h"
#include "runtime/state/state_store.h"

namespace skiff::runtime::ctl {

constexpr const char* kDefaultRoot = "/run/skiff";

struct SandboxRef {
  std::string id;
  ContainerState state;     // as state.json has it (empty when load_error is set)
  bool alive = false;       // its sandbox process runs (process_alive)
  std::string socket;       // its control socket: state.json's, else <root>/<id>/control.sock
  std::string load_error;   // set (by list_sandboxes only) when state.json could not be read
};

// Every sandbox with a state.json under `root`, sorted by id; none if `root`
// does not exist (skiffctl never creates it). One whose state.json is corrupt
// is listed with load_error set.
std::vector<SandboxRef> list_sandboxes(const std::string& root);

// The sandbox `id` under `root`. ConfigError: an id StateStore refuses, or
// `no sandbox "x" under /run/skiff` (`root` as given).
SandboxRef find_sandbox(const std::string& root, const std::string& id);

// A client of its control socket. std::runtime_error (`sandbox "x" is not
// running: its sandbox process is gone`) when it is dead; ControlCallError
// when the socket does not answer.
std::unique_ptr<ControlClient> connect(const SandboxRef& sandbox);

}  // namespace skiff::runtime::ctl
