// Returns a failed absl::Status from the enclosing function, for code that makes a long chain of
// calls each of which may fail (the GPU engine's, one call per kernel).
#ifndef MUPPET_BASE_STATUS_MACROS_H_
#define MUPPET_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"

// Evaluates `expr` (an absl::Status) and returns it unless it is OK.
#define MUPPET_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (absl::Status _status = (expr); !_status.ok()) return _status; \
  } while (0)

#endif  // MUPPET_BASE_STATUS_MACROS_H_
