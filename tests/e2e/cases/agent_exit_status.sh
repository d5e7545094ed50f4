# The agent: a container's non-zero exit status (3) comes back through Container.wait.
. "$(dirname "$0")/_common.sh"
agent_case exit_status
echo "agent: non-zero exit status checked over vsock"
