# The agent as PID 1 reaps what the kernel hands it: an orphan a container leaves in the guest's pid namespace is gone (no zombie) once it exits.
. "$(dirname "$0")/_common.sh"
agent_case orphans
echo "agent: PID 1 reaps orphans"
