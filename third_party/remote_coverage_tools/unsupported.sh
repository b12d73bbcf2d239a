#!/bin/sh
echo "bazel coverage is not supported in muppet's offline build" >&2
exit 1
