// Keeps the lectures from rotting: every link of the form [`name`](path#L<line>) in lectures/**/*.md
// must point at a line of that file that defines or declares `name(`. After code moves, `make relink`
// (lectures/relink.sh) re-points them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace {

fs::path source_dir() {
  const char *env = std::getenv("NANORLHF_SOURCE_DIR");
  return env ? fs::path(env) : fs::path(".");
}

std::vector<std::string> read_lines(const fs::path &p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  std::string l;
  while (std::getline(in, l)) lines.push_back(l);
  return lines;
}

struct Link { fs::path md; int md_line; std::string name, target; int line; };

std::vector<Link> collect_links() {
  std::vector<Link> out;
  fs::path root = source_dir() / "lectures";
  if (!fs::exists(root)) return out;
  std::regex re(R"(\[`([A-Za-z_][A-Za-z0-9_:~]*)(?:\(\))?`\]\(([^)#\s]+)#L(\d+)\))");
  for (auto &e : fs::recursive_directory_iterator(root)) {
    if (e.path().extension() != ".md") continue;
    auto lines = read_lines(e.path());
    for (size_t i = 0; i < lines.size(); ++i)
      for (std::sregex_iterator it(lines[i].begin(), lines[i].end(), re), end; it != end; ++it)
        out.push_back({e.path(), (int)i + 1, (*it)[1], (*it)[2], std::stoi((*it)[3])});
  }
  return out;
}

TEST(LectureLinks, EveryCodeLinkPointsAtTheFunctionItNames) {
  auto links = collect_links();
  for (const auto &l : links) {
    fs::path target = (l.md.parent_path() / l.target).lexically_normal();
    SCOPED_TRACE(l.md.string() + ":" + std::to_string(l.md_line) + " -> " + l.target + "#L" + std::to_string(l.line));
    ASSERT_TRUE(fs::exists(target)) << "the linked file does not exist";
    auto lines = read_lines(target);
    ASSERT_LE(l.line, (int)lines.size()) << "the file has only " << lines.size() << " lines; run `make relink`";
    std::string name = l.name.substr(l.name.rfind(':') == std::string::npos ? 0 : l.name.rfind(':') + 1);
    EXPECT_NE(lines[l.line - 1].find(name + "("), std::string::npos)
        << "line " << l.line << " is '" << lines[l.line - 1] << "', not the function " << l.name
        << "; run `make relink` (lectures/relink.sh) to re-point the links at their functions";
  }
}

// A LaTeX line written through an unescaped string turns \text, \alpha, \frac and \right into
// a tab, a bell, a form feed and a line break (it happened once). No lecture, and no source file
// with an equation above a function, needs a control byte.
TEST(LectureLinks, LecturesAndSourcesHoldNoControlCharacters) {
  std::vector<fs::path> files = {source_dir() / "README.md"};
  for (const char *dir : {"lectures", "tensor", "autograd", "nn", "rlhf", "kernels"}) {
    if (!fs::exists(source_dir() / dir)) continue;
    for (auto &e : fs::recursive_directory_iterator(source_dir() / dir)) {
      std::string ext = e.path().extension().string();
      if (ext == ".md" || ext == ".cpp" || ext == ".h" || ext == ".cu" || ext == ".cuh") files.push_back(e.path());
    }
  }
  for (const auto &f : files) {
    if (!fs::exists(f)) continue;
    std::ifstream in(f, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int line = 1;
    for (unsigned char ch : text) {
      if (ch == '\n') ++line;
      else if (ch < 0x20) ADD_FAILURE() << f.string() << ":" << line << ": control byte 0x" << std::hex << int(ch);
    }
  }
}

TEST(LectureLinks, TheCheckerFindsLinks) {
  // Guards against a regex that silently matches nothing once lectures exist.
  if (!fs::exists(source_dir() / "lectures" / "README.md")) GTEST_SKIP() << "no lectures yet";
  EXPECT_GT(collect_links().size(), 10u);
}

}  // namespace
