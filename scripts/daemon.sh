# start_daemon LOG COMMAND [ARG...]: start a daemon that holds nothing of its caller's.
# Sourced by setup.sh. A daemon inherits every open descriptor of the script that starts it
# (a lock the caller holds, a CI log's pipe) and keeps it for as long as it runs: the lock
# stays taken after its run has ended, the pipe never closes. So the daemon gets a session of
# its own (setsid), /dev/null for input, its log for output, and every other descriptor
# closed before its program starts. Daemons that fork themselves away (virtlogd -d,
# libvirtd -d) close nothing of what they were given, so they go through here too.
start_daemon() {
    local log=$1
    shift
    # shellcheck disable=SC2086  # SUDO is empty or one word
    $SUDO setsid -f python3 -c 'import os, sys
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
os.execvp(sys.argv[1], sys.argv[1:])' "$@" </dev/null >>"$log" 2>&1
}
