// The CPU cores this process may use.
#ifndef MUPPET_BASE_CPU_H_
#define MUPPET_BASE_CPU_H_

#include <sched.h>

namespace muppet {

// The cores in this process's affinity mask (what a container or taskset allows), at least 1.
inline int UsableCores() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

}  // namespace muppet

#endif  // MUPPET_BASE_CPU_H_
