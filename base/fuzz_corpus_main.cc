// The main of a fuzz target outside a fuzzing build: runs LLVMFuzzerTestOneInput once on every
// file under each directory (or on each file) named on the command line, as libFuzzer would on
// its corpus, and fails when a directory is missing or holds no file. A crash or a sanitizer
// report ends the process, naming the input last started.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> Inputs(const std::string& root) {
  std::vector<std::string> files;
  std::error_code error;
  if (std::filesystem::is_regular_file(root, error)) return {root};
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root, error)) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  size_t runs = 0;
  for (int a = 1; a < argc; ++a) {
    const std::vector<std::string> files = Inputs(argv[a]);
    if (files.empty()) {
      std::fprintf(stderr, "%s: no corpus files\n", argv[a]);
      return 1;
    }
    for (const std::string& file : files) {
      std::ifstream in(file, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      std::fprintf(stderr, "running %s (%zu bytes)\n", file.c_str(), bytes.size());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++runs;
    }
  }
  std::fprintf(stderr, "%zu inputs ran\n", runs);
  return 0;
}
