// Regression driver for the fuzz targets in the normal (gcc) build: runs
// LLVMFuzzerTestOneInput over every file of the corpus directories given on
// the command line, then over pseudo-random inputs (mutations of the corpus
// and plain random bytes) from a fixed seed, bounded in count and time. The
// libFuzzer build links libFuzzer's own main() instead of this file.
//
//   fuzz_<name> [--iterations N] [--seconds S] [--save-current FILE] DIR_OR_FILE...
//
// --save-current writes each input to FILE before running it: after a crash,
// a hang or an OOM kill, FILE holds the input responsible.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Input = std::vector<uint8_t>;
constexpr size_t kMaxRandomLen = 4096;

bool ReadFile(const std::filesystem::path& path, Input* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

const char* g_save_current = nullptr;

void Run(const Input& input) {
  if (g_save_current != nullptr) {
    std::ofstream out(g_save_current, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(input.data()),
              static_cast<std::streamsize>(input.size()));
  }
  // A copy in an exactly sized heap block so ASan sees reads past the end.
  auto* copy = static_cast<uint8_t*>(std::malloc(input.size() + 1));
  if (!input.empty()) std::copy(input.begin(), input.end(), copy);
  LLVMFuzzerTestOneInput(input.empty() ? nullptr : copy, input.size());
  std::free(copy);
}

// One random edit of `in`: flip, overwrite, insert, erase, duplicate or
// splice with another corpus entry.
Input Mutate(const Input& in, const std::vector<Input>& corpus, std::mt19937_64& rng) {
  Input out = in;
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 7) {
      case 0:
        if (!out.empty()) out[pick(out.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        if (!out.empty()) out[pick(out.size())] = static_cast<uint8_t>(rng());
        break;
      case 2:
        out.insert(out.begin() + static_cast<std::ptrdiff_t>(pick(out.size() + 1)),
                   static_cast<uint8_t>(rng()));
        break;
      case 3:
        if (!out.empty()) {
          size_t at = pick(out.size());
          size_t n = 1 + pick(std::min<size_t>(16, out.size() - at));
          out.erase(out.begin() + static_cast<std::ptrdiff_t>(at),
                    out.begin() + static_cast<std::ptrdiff_t>(std::min(out.size(), at + n)));
        }
        break;
      case 4:
        if (!out.empty()) out.resize(pick(out.size()));
        break;
      case 5:
        if (!out.empty() && out.size() < kMaxRandomLen) {
          size_t at = pick(out.size());
          size_t n = 1 + pick(std::min<size_t>(32, out.size() - at));
          Input chunk(out.begin() + static_cast<std::ptrdiff_t>(at),
                      out.begin() + static_cast<std::ptrdiff_t>(at + n));
          out.insert(out.begin() + static_cast<std::ptrdiff_t>(pick(out.size() + 1)),
                     chunk.begin(), chunk.end());
        }
        break;
      default:
        if (!corpus.empty()) {
          const Input& other = corpus[pick(corpus.size())];
          size_t keep = pick(out.size() + 1);
          out.resize(keep);
          size_t from = pick(other.size() + 1);
          out.insert(out.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        }
        break;
    }
  }
  if (out.size() > kMaxRandomLen) out.resize(kMaxRandomLen);
  return out;
}

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--iterations N] [--seconds S] [--save-current FILE] "
               "DIR_OR_FILE...\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 20000;
  double seconds = 4.0;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if ((arg == "--iterations" || arg == "--seconds") && i + 1 < argc) {
      char* end = nullptr;
      if (arg == "--iterations") iterations = std::strtol(argv[++i], &end, 10);
      else seconds = std::strtod(argv[++i], &end);
      if (end == nullptr || *end != '\0') return Usage(argv[0]);
    } else if (arg == "--save-current" && i + 1 < argc) {
      g_save_current = argv[++i];
    } else if (arg.starts_with("--")) {
      return Usage(argv[0]);
    } else {
      paths.emplace_back(arg);
    }
  }

  std::vector<Input> corpus;
  for (const auto& p : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(p, ec)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());  // deterministic order
      for (const auto& f : files) {
        Input in;
        if (!ReadFile(f, &in)) {
          std::fprintf(stderr, "cannot read %s\n", f.c_str());
          return 1;
        }
        corpus.push_back(std::move(in));
      }
    } else {
      Input in;
      if (!ReadFile(p, &in)) {
        std::fprintf(stderr, "cannot read %s: is the corpus path right?\n", p.c_str());
        return 1;
      }
      corpus.push_back(std::move(in));
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "no corpus inputs found: pass the corpus directory\n");
    return 1;
  }

  Run(Input{});
  for (const auto& in : corpus) Run(in);
  std::printf("corpus: %zu inputs OK\n", corpus.size());

  std::mt19937_64 rng(0x616d626974ull);  // fixed seed: reproducible runs
  auto start = std::chrono::steady_clock::now();
  auto budget = std::chrono::duration<double>(seconds);
  long done = 0;
  for (; done < iterations; ++done) {
    if (done % 64 == 0 && std::chrono::steady_clock::now() - start > budget) break;
    Input in;
    if (rng() % 8 == 0) {
      in.resize(static_cast<size_t>(rng() % 512));
      for (auto& b : in) b = static_cast<uint8_t>(rng());
    } else {
      in = Mutate(corpus[static_cast<size_t>(rng() % corpus.size())], corpus, rng);
    }
    Run(in);
  }
  std::printf("random: %ld inputs OK (seed fixed, %.1f s budget)\n", done, seconds);
  return 0;
}
