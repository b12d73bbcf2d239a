// Fuzzes the tokens file parser: any text gives a table or an error naming the file, never a
// crash.
#include <cstdint>
#include <cstdlib>

#include "server/auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<muppet::server::TokenTable> table =
      muppet::server::TokenTable::Parse(text, "tokens");
  if (table.ok()) {
    (void)table->Find("some-token");
  } else if (table.status().message().substr(0, 7) != "tokens:") {
    std::abort();
  }
  return 0;
}
