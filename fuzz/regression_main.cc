// Runs a libFuzzer target over files and directories of inputs, for builds
// without libFuzzer: the corpus becomes a regression test in the normal run.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
int run_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) inputs += run_file(e.path());
    } else if (std::filesystem::is_regular_file(p)) {
      inputs += run_file(p);
    } else {
      std::fprintf(stderr, "fuzz regression: %s is not a file or directory\n", argv[i]);
      return 2;
    }
  }
  if (inputs == 0) {
    std::fprintf(stderr, "fuzz regression: no inputs\n");
    return 2;
  }
  std::printf("fuzz regression: %d inputs ran clean\n", inputs);
  return 0;
}
