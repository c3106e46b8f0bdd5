#!/bin/sh
# redis-server and, once it has shut down, a second one on the same files: a restart that must
# find what the first one saved.
/usr/bin/redis-server /app/redis.conf
echo "redis-twice: the first server ended; starting it again"
exec /usr/bin/redis-server /app/redis.conf
