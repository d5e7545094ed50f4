# The agent (PID 1 of the built guest) runs a container from the virtio-fs share that echoes a line and exits 0 (agent_case in _common.sh).
. "$(dirname "$0")/_common.sh"
agent_case echo
echo "agent: echo checked over vsock"
