#include "config/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

#include "common/size.h"
#include "common/trim.h"
#include "overlay/image_location.h"

namespace corfs::config {

namespace fs = std::filesystem;

namespace {

std::string Lower(std::string_view text) {
  std::string out;
  for (char c : text) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

// `text` with control characters escaped (a NUL as \0, others as \xNN), so
// that a message stays on one line whatever the file holds.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\0') {
      out += "\\0";
    } else if (std::iscntrl(static_cast<unsigned char>(c))) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xf]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A user's text for a message: quoted and shortened.
std::string Quote(std::string_view text) {
  constexpr size_t kShown = 60;
  if (text.size() > kShown) return "'" + std::string(text.substr(0, kShown)) + "...'";
  return "'" + std::string(text) + "'";
}

// Checks that the field holds a scalar; reports "expected EXPECTED, got ..." otherwise.
bool RequireScalar(const Field& field, std::string_view expected, Diagnostics& diag) {
  if (field.node.IsScalar()) return true;
  diag.Error(field.mark, field.what + ": expected " + std::string(expected) + ", got " + Describe(field.node));
  return false;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

// ---------------------------------------------------------------------------
// Diagnostics

std::string Diagnostics::Where(const YAML::Mark& mark) const {
  if (mark.line < 0 || mark.column < 0) return source_;
  return source_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

void Diagnostics::Error(const YAML::Mark& mark, const std::string& message, int code) {
  // A template is expanded for every image that uses it, so a mistake in it
  // is found once per use; it is one mistake at one place, said once.
  std::string text = Printable(Where(mark) + ": " + message);
  for (const Entry& entry : errors_) {
    if (entry.text == text) return;
  }
  errors_.push_back({mark.line, mark.column, std::move(text), code});
}

Status Diagnostics::ToStatus() const {
  if (errors_.empty()) return Status::Ok();
  std::vector<const Entry*> sorted;
  for (const Entry& entry : errors_) sorted.push_back(&entry);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return std::pair(a->line, a->column) < std::pair(b->line, b->column);
  });
  std::string message;
  for (size_t i = 0; i < sorted.size() && i < kMaxShown; ++i) {
    if (i) message += "\n";
    message += sorted[i]->text;
  }
  if (sorted.size() > kMaxShown) {
    message += "\n" + source_ + ": ... and " + std::to_string(sorted.size() - kMaxShown) + " more errors";
  }
  return Status::Error(sorted.front()->code, message);
}

// ---------------------------------------------------------------------------
// Documents

namespace {

// Records where each document starts, and nothing else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;

  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

bool LoadSingleDocument(const std::string& text, Diagnostics& diag, YAML::Node* out) {
  try {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentStarts documents;
    // Three documents at most: the first, a second one (an error), and one
    // more to tell a real second document from a parser that is stuck.
    for (int i = 0; i < 3 && parser.HandleNextDocument(documents); ++i) {
      const std::vector<YAML::Mark>& starts = documents.starts;
      if (starts.size() >= 2 && starts[starts.size() - 1].pos == starts[starts.size() - 2].pos) {
        const YAML::Mark& stuck = starts.back();
        const std::string what =
            stuck.pos >= 0 && static_cast<size_t>(stuck.pos) < text.size() ? Quote(text.substr(stuck.pos, 1)) : "text";
        diag.Error(stuck, "malformed YAML: unexpected " + what + " (outside a [list] or {map})");
        return false;
      }
    }
    if (documents.starts.size() > 1) {
      diag.Error(documents.starts[1], "a second YAML document (after '---'); a config file holds one");
      return false;
    }
    out->reset(YAML::Load(text));
    return true;
  } catch (const YAML::Exception& e) {
    diag.Error(e.mark, "malformed YAML: " + e.msg);
    return false;
  }
}

// ---------------------------------------------------------------------------
// Structure

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return Quote(node.Scalar());
  }
  return "something else";
}

std::string JoinWhat(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

bool ReadMap(const Field& field, std::span<const std::string_view> allowed, Diagnostics& diag,
             std::vector<MapEntry>* out) {
  out->clear();
  if (field.node.IsNull()) return true;
  if (!field.node.IsMap()) {
    diag.Error(field.mark, (field.what.empty() ? std::string("the file") : field.what) + ": expected a map, got " +
                               Describe(field.node));
    return false;
  }
  const std::string where = field.what.empty() ? std::string("the top level") : field.what;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = field.node.begin(); it != field.node.end(); ++it) {
    const YAML::Node key = it->first;  // by value: `it->` is a temporary proxy
    const YAML::Node value = it->second;
    if (!key.IsScalar() && !key.IsNull()) {
      diag.Error(key.Mark(), where + ": a key must be a plain name, not " + Describe(key));
      continue;
    }
    std::string name = key.IsScalar() ? key.Scalar() : "";
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string message = where + ": unknown key " + Quote(name);
      std::string_view suggestion = Suggest(name, allowed);
      if (!suggestion.empty()) message += " (did you mean '" + std::string(suggestion) + "'?)";
      diag.Error(key.Mark(), message + "; allowed keys: " + ListWords(allowed, ", "));
      continue;
    }
    auto [first, inserted] = seen.emplace(name, key.Mark());
    if (!inserted) {
      diag.Error(key.Mark(), where + ": duplicate key " + Quote(name) + " (first at " + diag.Where(first->second) +
                                 "; each key may appear once)");
      continue;
    }
    MapEntry entry;
    entry.key = name;
    entry.key_mark = key.Mark();
    // An empty value's mark is where the next token starts: point at the key instead.
    entry.value = Field(value, value.IsNull() ? key.Mark() : value.Mark(), JoinWhat(field.what, name));
    out->push_back(std::move(entry));
  }
  return true;
}

std::vector<Field> ListElements(const Field& field) {
  std::vector<Field> out;
  if (field.node.IsNull()) return out;
  if (!field.node.IsSequence()) {
    out.push_back(field);
    return out;
  }
  for (size_t i = 0; i < field.node.size(); ++i) {
    YAML::Node element = field.node[i];
    out.push_back({element, element.IsNull() ? field.mark : element.Mark(),
                   field.what + "[" + std::to_string(i) + "]"});
  }
  return out;
}

// ---------------------------------------------------------------------------
// Scalars

bool ReadString(const Field& field, Diagnostics& diag, std::string* out, bool allow_empty) {
  if (!RequireScalar(field, "a string", diag)) return false;
  const std::string& text = field.node.Scalar();
  if (text.empty() && !allow_empty) {
    diag.Error(field.mark, field.what + ": must not be empty");
    return false;
  }
  if (text.find('\0') != std::string::npos) {
    diag.Error(field.mark, field.what + ": " + Quote(text) + " contains a NUL character");
    return false;
  }
  *out = text;
  return true;
}

bool ReadBool(const Field& field, Diagnostics& diag, bool* out) {
  if (!RequireScalar(field, "true or false", diag)) return false;
  const std::string word = Lower(field.node.Scalar());
  if (word == "true" || word == "yes" || word == "on") {
    *out = true;
    return true;
  }
  if (word == "false" || word == "no" || word == "off") {
    *out = false;
    return true;
  }
  diag.Error(field.mark, field.what + ": expected true or false, got " + Quote(field.node.Scalar()));
  return false;
}

bool ReadSize(const Field& field, Diagnostics& diag, uint64_t* out) {
  if (!RequireScalar(field, "a size such as 64K or 10G", diag)) return false;
  Status parsed = ParseSize(field.node.Scalar(), out);
  if (!parsed.ok()) {
    diag.Error(field.mark, field.what + ": " + parsed.message());
    return false;
  }
  return true;
}

bool ReadUnsigned(const Field& field, uint64_t max, Diagnostics& diag, uint64_t* out) {
  if (!RequireScalar(field, "a whole number", diag)) return false;
  const std::string text(TrimSpace(field.node.Scalar()));
  bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    diag.Error(field.mark, field.what + ": expected a whole number, got " + Quote(field.node.Scalar()));
    return false;
  }
  uint64_t value = 0;
  for (char c : text) {
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) {
      diag.Error(field.mark, field.what + ": " + text + " is too large (at most " + std::to_string(max) + ")");
      return false;
    }
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

bool ReadDuration(const Field& field, std::chrono::milliseconds min, std::chrono::milliseconds max, Diagnostics& diag,
                  std::chrono::milliseconds* out) {
  if (!RequireScalar(field, "a duration such as 5s or 500ms", diag)) return false;
  const std::string text(TrimSpace(field.node.Scalar()));
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  static constexpr struct {
    const char* unit;
    int64_t ms;
  } kUnits[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  const std::string unit = text.substr(digits);
  const auto found = std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& u) { return unit == u.unit; });
  if (digits == 0 || digits > 9 || found == std::end(kUnits)) {
    diag.Error(field.mark, field.what + ": expected a duration such as 5s or 500ms (units ms, s, m, h), got " +
                               Quote(field.node.Scalar()));
    return false;
  }
  const std::chrono::milliseconds value(std::stoll(text.substr(0, digits)) * found->ms);
  if (value < min || value > max) {
    diag.Error(field.mark, field.what + ": " + text + " is outside " + std::to_string(min.count()) + "ms .. " +
                               std::to_string(max.count() / 1000) + "s");
    return false;
  }
  *out = value;
  return true;
}

bool ReadMode(const Field& field, Diagnostics& diag, uint32_t* out) {
  if (!RequireScalar(field, "an octal mode such as 0644", diag)) return false;
  std::string text(TrimSpace(field.node.Scalar()));
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O')) text = text.substr(2);
  bool octal = !text.empty() && text.size() <= 12 &&
               std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '7'; });
  if (!octal) {
    diag.Error(field.mark, field.what + ": expected an octal mode such as 0644, got " + Quote(field.node.Scalar()));
    return false;
  }
  uint64_t value = std::stoull(text, nullptr, 8);
  if (value > 0777) {
    diag.Error(field.mark, field.what + ": mode " + Quote(field.node.Scalar()) +
                               " has bits beyond the permission bits (at most 0777)");
    return false;
  }
  *out = static_cast<uint32_t>(value);
  return true;
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (overlay::IsUri(path)) return path;  // a name on a server, not a path
  fs::path p(path);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  return p.lexically_normal().string();
}

bool ReadPath(const Field& field, const std::string& base_dir, Diagnostics& diag, std::string* out) {
  std::string text;
  if (!ReadString(field, diag, &text)) return false;
  if (text[0] == '~') {
    diag.Error(field.mark, field.what + ": " + Quote(text) +
                               ": '~' is not expanded; write the full path or a path relative to this file");
    return false;
  }
  *out = ResolvePath(base_dir, text);
  return true;
}

// ---------------------------------------------------------------------------
// Words

std::string ListWords(std::span<const std::string_view> words, std::string_view last_joiner) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) out += (i + 1 == words.size()) ? std::string(last_joiner) : std::string(", ");
    out += words[i];
  }
  return out;
}

std::string_view Suggest(std::string_view word, std::span<const std::string_view> words) {
  std::string_view best;
  size_t best_distance = 3;  // suggest only close words
  const std::string lower = Lower(word);
  for (std::string_view candidate : words) {
    size_t distance = EditDistance(lower, candidate);
    if (distance < best_distance && distance < candidate.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace corfs::config
