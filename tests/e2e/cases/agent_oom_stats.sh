# The agent: a container's stats under a 16 MiB memory limit, a device cgroup rule denying /dev/zero until Container.update lifts it, then an OOM kill reported through EventSink.oom.
. "$(dirname "$0")/_common.sh"
agent_case oom_stats
echo "agent: stats, device rules, update and OOM checked over vsock"
