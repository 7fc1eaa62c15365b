// Runs a fuzz target's entry function without libFuzzer, so that any compiler's test run
// exercises it: every seed file in the given directories as is, then a bounded number of
// mutations of them (bit flips, byte changes, insertions, deletions, truncations, splices)
// drawn from a fixed seed, so every run feeds the same inputs.
// Usage: <target>_seeds CORPUS_DIR... [--mutations=N]

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(const std::vector<std::string>& seeds, std::mt19937& rng) {
  std::string s = seeds[rng() % seeds.size()];
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!s.empty()) s[pos] = static_cast<char>(s[pos] ^ (1 << (rng() % 8)));
        break;
      case 1:  // set a byte to an interesting value
        if (!s.empty()) s[pos] = "\x00\xff\x7f\x80\"{}[]0-"[rng() % 12];
        break;
      case 2:  // insert random bytes
        s.insert(pos, std::string(1 + rng() % 4, static_cast<char>(rng())));
        break;
      case 3:  // delete a range
        s.erase(pos, 1 + rng() % 16);
        break;
      case 4:  // truncate
        s.resize(pos);
        break;
      case 5: {  // splice a piece of another seed
        const std::string& o = seeds[rng() % seeds.size()];
        if (!o.empty()) {
          const size_t from = rng() % o.size();
          s.insert(pos, o.substr(from, 1 + rng() % 64));
        }
        break;
      }
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 3000;
  std::vector<std::string> seeds;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--mutations=", 12) == 0) {
      mutations = std::atol(argv[i] + 12);
      continue;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());  // a fixed order: reproducible runs
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      seeds.push_back(ss.str());
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "seed_driver: no seed files given\n");
    return 1;
  }
  for (const auto& s : seeds) Run(s);
  std::mt19937 rng(20240611);
  for (long i = 0; i < mutations; ++i) Run(Mutate(seeds, rng));
  std::printf("seed_driver: %zu seeds, %ld mutations, no crash\n", seeds.size(), mutations);
  return 0;
}
