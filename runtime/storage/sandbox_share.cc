#include "runtime/storage/sandbox_share.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "base/log.h"

namespace skiff::runtime {
namespace {

[[noreturn]] void fail(int err, const std::string& what) { throw std::system_error(err, std::generic_category(), what); }

void make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) fail(errno, "mkdir " + path);
}

// A bind mount needs a mount point of the same kind: a directory for a
// directory, an empty file for anything else.
void make_mount_point(const std::string& source, const std::string& target) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) fail(errno, "stat " + source);
  if (S_ISDIR(st.st_mode)) {
    make_dir(target, 0755);
  } else {
    const int fd = ::open(target.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) fail(errno, "create " + target);
    ::close(fd);
  }
}

void bind(const std::string& source, const std::string& target, bool read_only) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    fail(errno, "bind mount " + source + " on " + target);
  if (::mount(nullptr, target.c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    const int err = errno;
    ::umount2(target.c_str(), MNT_DETACH);
    fail(err, "make " + target + " a slave mount");
  }
  if (read_only &&
      ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    const int err = errno;
    ::umount2(target.c_str(), MNT_DETACH);
    fail(err, "remount " + target + " read-only");
  }
}

}  // namespace

bool SandboxShare::valid_container_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

SandboxShare::SandboxShare(std::string dir) : dir_(std::move(dir)) { make_dir(dir_, 0700); }

SandboxShare::~SandboxShare() {
  std::lock_guard lock(mu_);
  for (auto& e : entries_) undo(e);
  entries_.clear();
  std::error_code ec;
  std::filesystem::remove(dir_, ec);
  if (ec) log::warn("storage", "sandbox share directory not removed", {{"dir", dir_}, {"error", ec.message()}});
}

void SandboxShare::undo(Entry& e) {
  for (auto it = e.mounts.rbegin(); it != e.mounts.rend(); ++it)
    if (::umount2(it->c_str(), MNT_DETACH) != 0)
      log::warn("storage", "unmount failed", {{"path", *it}, {"error", std::string(std::strerror(errno))}});
  e.mounts.clear();
  // Only mount points and the directories we made are left: remove_all never
  // crosses into a source, since everything is unmounted first.
  std::error_code ec;
  std::filesystem::remove_all(dir_ + "/" + e.id, ec);
  if (ec) log::warn("storage", "container share not removed", {{"container", e.id}, {"error", ec.message()}});
}

ContainerShare SandboxShare::add_container(const std::string& id, const std::string& rootfs, bool rootfs_read_only,
                                           const std::vector<VolumeShare>& volumes) {
  if (!valid_container_id(id)) throw std::invalid_argument("container id \"" + id + "\" is not a plain name");
  std::lock_guard lock(mu_);
  if (std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.id == id; }))
    throw std::invalid_argument("container " + id + " is already shared");
  Entry e{id, {}};
  ContainerShare share;
  const std::string base = dir_ + "/" + id;
  try {
    make_dir(base, 0755);
    make_dir(base + "/rootfs", 0755);
    bind(rootfs, base + "/rootfs", rootfs_read_only);
    e.mounts.push_back(base + "/rootfs");
    share.rootfs = id + "/rootfs";
    if (!volumes.empty()) make_dir(base + "/volumes", 0755);
    for (size_t i = 0; i < volumes.size(); ++i) {
      const std::string target = base + "/volumes/" + std::to_string(i);
      make_mount_point(volumes[i].source, target);
      bind(volumes[i].source, target, volumes[i].read_only);
      e.mounts.push_back(target);
      share.volumes.push_back(id + "/volumes/" + std::to_string(i));
    }
  } catch (...) {
    undo(e);
    throw;
  }
  entries_.push_back(std::move(e));
  return share;
}

void SandboxShare::remove_container(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.id == id; });
  if (it == entries_.end()) return;
  undo(*it);
  entries_.erase(it);
}

std::vector<std::string> SandboxShare::containers() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& e : entries_) ids.push_back(e.id);
  return ids;
}

}  // namespace skiff::runtime
