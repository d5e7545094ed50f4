# The agent: a long-running container, exec into its namespaces, ps, SIGTERM ending it through its trap with status 7.
. "$(dirname "$0")/_common.sh"
agent_case exec_signal
echo "agent: exec, ps and signals checked over vsock"
