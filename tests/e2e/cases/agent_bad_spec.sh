# The agent: a relative cwd and a missing rootfs are refused with their reasons, and no container is left behind.
. "$(dirname "$0")/_common.sh"
agent_case bad_spec
echo "agent: bad specs refused over vsock"
