#!/bin/sh
# A container-style entrypoint, run by Debian's busybox sh: commands in turn, a pipeline (in a
# command substitution), a redirection, then exec of the server in the shell's place (pid 1).
set -e
echo "entrypoint: start as pid $$"
count=$(ls /app | wc -l)
echo "entrypoint: $count files in /app"
echo kiln | tr a-z A-Z
echo "written by the entrypoint" > /tmp/note
test "$(cat /tmp/note)" = "written by the entrypoint" && echo "entrypoint: redirection ok"
exec /usr/bin/python3.11 -c 'import os; print("entrypoint: exec as pid", os.getpid())'
