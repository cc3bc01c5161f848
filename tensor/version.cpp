// The library's version string (also keeps the core library non-empty while layers are built up).
namespace nanorlhf {
const char *version() { return "0.1.0"; }
}  // namespace nanorlhf
