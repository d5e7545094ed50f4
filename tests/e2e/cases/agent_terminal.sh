# The agent: a container on a pty sees its console size, then the new size after Process.resizeTerminal.
. "$(dirname "$0")/_common.sh"
agent_case terminal
echo "agent: terminal and resize checked over vsock"
