#include "config/chain_resolver.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "config/remote_config.h"
#include "overlay/image_location.h"
#include "overlay/image_opener.h"

namespace corfs::config {

namespace {

constexpr std::string_view kEntryKeys[] = {"path", "format", "template"};

bool ValidFormatName(const std::string& format) {
  return std::all_of(format.begin(), format.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
           c == '-';
  });
}

}  // namespace

void ChainResolver::AddTemplates(const std::vector<MapEntry>& templates) {
  for (const MapEntry& entry : templates) {
    if (entry.key.empty()) {
      diag_.Error(entry.key_mark, "templates: a template name must not be empty");
      continue;
    }
    if (entry.key.find('/') != std::string::npos || entry.key.find('\0') != std::string::npos) {
      diag_.Error(entry.key_mark, "templates: template name '" + entry.key +
                                      "' must not contain '/' (a string with '/' in a chain is a path)");
      continue;
    }
    templates_[entry.key].definition = entry.value;
  }
  for (auto& [name, tmpl] : templates_) {
    if (tmpl.state != State::kPending) continue;
    std::vector<std::string> stack;
    std::vector<ResolvedImage> ignored;
    ExpandTemplate(name, tmpl.definition, stack, &ignored);
  }
}

bool ChainResolver::Resolve(const Field& backing, std::vector<ResolvedImage>* out) {
  std::vector<std::string> stack;
  out->clear();
  resolving_image_ = true;
  bool ok = ResolveValue(backing, stack, out);
  resolving_image_ = false;
  return ok;
}

void ChainResolver::ReportMissingInUnusedTemplates() {
  std::vector<std::string> used_paths;
  for (const auto& [name, tmpl] : templates_) {
    if (!tmpl.used_by_image) continue;
    for (const ResolvedImage& link : tmpl.links) used_paths.push_back(link.spec.path);
  }
  for (const auto& [name, tmpl] : templates_) {
    if (tmpl.used_by_image) continue;
    for (const ResolvedImage& link : tmpl.links) {
      if (link.missing.empty()) continue;
      if (std::find(used_paths.begin(), used_paths.end(), link.spec.path) != used_paths.end()) continue;
      diag_.Error(link.mark, link.missing, ENOENT);
    }
  }
}

bool ChainResolver::ResolveValue(const Field& value, std::vector<std::string>& stack, std::vector<ResolvedImage>* out) {
  if (value.node.IsMap() || value.node.IsScalar()) return ResolveEntry(value, stack, out);
  if (!value.node.IsNull() && !value.node.IsSequence()) {
    diag_.Error(value.mark,
                value.what + ": expected a template name, an image or a list of them, got " + Describe(value.node));
    return false;
  }
  bool ok = true;
  std::vector<ResolvedImage> links;
  for (const Field& element : ListElements(value)) {
    if (element.node.IsSequence()) {
      diag_.Error(element.mark, element.what + ": a list inside a chain; write one flat list, top image first");
      ok = false;
      continue;
    }
    std::vector<ResolvedImage> entry_links;
    if (!ResolveEntry(element, stack, &entry_links)) {
      ok = false;
      continue;
    }
    // The same file twice in one chain. A repeat inside a template was
    // reported with the template, so only links of different entries meet here.
    for (const ResolvedImage& link : entry_links) {
      auto earlier =
          std::find_if(links.begin(), links.end(), [&](const ResolvedImage& other) { return other.SameImage(link); });
      if (earlier != links.end()) {
        std::string same = earlier->spec.path == link.spec.path ? "" : " (the same file as " + earlier->spec.path + ")";
        diag_.Error(element.mark, element.what + ": " + link.spec.path + same + " is already in this chain, at " +
                                      diag_.Where(earlier->mark) + "; an image may appear once in a chain");
        ok = false;
      }
    }
    links.insert(links.end(), entry_links.begin(), entry_links.end());
  }
  if (!ok) return false;
  out->insert(out->end(), links.begin(), links.end());
  return true;
}

bool ChainResolver::ResolveEntry(const Field& entry, std::vector<std::string>& stack, std::vector<ResolvedImage>* out) {
  if (entry.node.IsNull()) {
    diag_.Error(entry.mark, entry.what + ": empty entry; expected a template name or an image path");
    return false;
  }
  if (entry.node.IsScalar()) {
    std::string text;
    if (!ReadString(entry, diag_, &text)) return false;
    if (HasTemplate(text)) return ExpandTemplate(text, entry, stack, out);
    return AddPath(text, "", entry, /*maybe_template=*/true, out);
  }
  if (!entry.node.IsMap()) {
    diag_.Error(entry.mark, entry.what + ": expected a template name, an image path or a map {path, format}, got " +
                                Describe(entry.node));
    return false;
  }
  std::vector<MapEntry> keys;
  if (!ReadMap(entry, kEntryKeys, diag_, &keys)) return false;
  const MapEntry* path = nullptr;
  const MapEntry* format = nullptr;
  const MapEntry* tmpl = nullptr;
  for (const MapEntry& key : keys) {
    if (key.key == "path") path = &key;
    if (key.key == "format") format = &key;
    if (key.key == "template") tmpl = &key;
  }
  if (tmpl != nullptr) {
    if (path != nullptr || format != nullptr) {
      diag_.Error(tmpl->key_mark, entry.what + ": give either `template:` or `path:` (with `format:`), not both");
      return false;
    }
    std::string name;
    if (!ReadString(tmpl->value, diag_, &name)) return false;
    if (!HasTemplate(name)) {
      diag_.Error(tmpl->value.mark, tmpl->value.what + ": unknown template '" + name + "'" + TemplateNames());
      return false;
    }
    return ExpandTemplate(name, tmpl->value, stack, out);
  }
  if (path == nullptr) {
    diag_.Error(entry.mark, entry.what + ": an image needs `path:` (or name a template with `template:`)");
    return false;
  }
  std::string text;
  std::string format_name;
  bool ok = ReadString(path->value, diag_, &text);
  if (format != nullptr && ReadString(format->value, diag_, &format_name, /*allow_empty=*/true)) {
    if (!ValidFormatName(format_name)) {
      diag_.Error(format->value.mark, format->value.what + ": '" + format_name +
                                          "' is not a format name (such as raw or qcow2; auto = detect)");
      ok = false;
    } else if (!overlay::KnownImageFormat(format_name)) {
      // Said here, with the line, rather than when the mount opens it.
      diag_.Error(format->value.mark, format->value.what + ": image format '" + format_name +
                                          "' is not supported (raw, qcow2, or auto to detect)");
      ok = false;
    }
    if (format_name == "auto") format_name.clear();
  } else if (format != nullptr) {
    ok = false;
  }
  if (!ok) return false;
  return AddPath(text, format_name, path->value, /*maybe_template=*/false, out);
}

bool ChainResolver::ExpandTemplate(const std::string& name, const Field& reference, std::vector<std::string>& stack,
                                   std::vector<ResolvedImage>* out) {
  Template& tmpl = templates_.at(name);
  if (resolving_image_) tmpl.used_by_image = true;
  switch (tmpl.state) {
    case State::kDone: out->insert(out->end(), tmpl.links.begin(), tmpl.links.end()); return true;
    case State::kFailed: return false;  // reported with the template
    case State::kExpanding: {
      std::string cycle;
      auto first = std::find(stack.begin(), stack.end(), name);
      for (auto it = first; it != stack.end(); ++it) cycle += *it + " -> ";
      diag_.Error(reference.mark,
                  reference.what + ": template cycle: " + cycle + name + " (a template cannot contain itself)");
      return false;
    }
    case State::kPending: break;
  }
  const Field& definition = tmpl.definition;
  bool ok = true;
  if (definition.node.IsNull() || (definition.node.IsSequence() && definition.node.size() == 0)) {
    diag_.Error(definition.mark, definition.what + ": template '" + name + "' names no image");
    ok = false;
  } else {
    tmpl.state = State::kExpanding;
    stack.push_back(name);
    std::vector<ResolvedImage> links;
    ok = ResolveValue(definition, stack, &links);
    stack.pop_back();
    if (ok) tmpl.links = std::move(links);
  }
  tmpl.state = ok ? State::kDone : State::kFailed;
  if (ok) out->insert(out->end(), tmpl.links.begin(), tmpl.links.end());
  return ok;
}

bool ChainResolver::AddPath(const std::string& text, const std::string& format, const Field& field, bool maybe_template,
                            std::vector<ResolvedImage>* out) {
  if (overlay::IsUri(text)) return AddUri(text, format, field, out);
  if (text[0] == '~') {
    diag_.Error(field.mark, field.what + ": '" + text +
                                "': '~' is not expanded; write the full path or a path relative to this file");
    return false;
  }
  ResolvedImage link;
  link.spec.path = ResolvePath(base_dir_, text);
  link.spec.format = format;
  link.mark = field.mark;
  StatResult& result = stat_cache_[link.spec.path];
  if (!result.known) {
    result.known = true;
    struct stat st {};
    if (::stat(link.spec.path.c_str(), &st) != 0) {
      result.error = errno;
    } else if (S_ISDIR(st.st_mode)) {
      result.error = EISDIR;
    } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
      result.error = EINVAL;
    } else {
      result.file = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    }
  }
  if (result.error != 0) {
    std::string why = result.error == EISDIR   ? "is a folder, not an image"
                      : result.error == EINVAL ? "is neither a regular file nor a block device"
                                               : std::strerror(result.error);
    std::string hint;
    if (maybe_template && text.find('/') == std::string::npos) {
      hint = " (and no template is called '" + text + "'" + TemplateNames() + ")";
    }
    std::string message = field.what + ": backing image " + link.spec.path + ": " + why + hint;
    if (result.error == ENOENT) {
      // Reported by whoever needs the chain: see ResolvedImage::missing.
      link.missing = std::move(message);
      out->push_back(std::move(link));
      return true;
    }
    diag_.Error(field.mark, message, EINVAL);
    return false;
  }
  link.file = result.file;
  out->push_back(std::move(link));
  return true;
}

bool ChainResolver::AddUri(const std::string& text, const std::string& format, const Field& field,
                           std::vector<ResolvedImage>* out) {
  overlay::Protocol protocol = overlay::Protocol::kFile;
  if (Status known = overlay::ParseProtocol(text, &protocol); !known.ok()) {
    diag_.Error(field.mark, field.what + ": " + known.message());
    return false;
  }
  // A server is asked nothing here: whether the image is there is for the
  // open to find out (and to retry), as a missing file is for a standalone
  // overlay's chain.
  ResolvedImage link;
  if (Status taken = TakeUriCredentials(text, remote_, &link.spec.path); !taken.ok()) {
    diag_.Error(field.mark, field.what + ": " + taken.message());
    return false;
  }
  link.spec.format = format;
  link.mark = field.mark;
  out->push_back(std::move(link));
  return true;
}

bool ResolvedImage::SameImage(const ResolvedImage& other) const {
  if (overlay::IsUri(spec.path) || overlay::IsUri(other.spec.path) || !missing.empty() || !other.missing.empty()) {
    return spec.path == other.spec.path;
  }
  return file == other.file;
}

bool ChainResolver::Identify(const std::string& path, const Field& field, FileId* out) {
  std::vector<ResolvedImage> links;
  if (!AddPath(path, "", field, /*maybe_template=*/false, &links)) return false;
  if (!links.front().missing.empty()) {
    diag_.Error(field.mark, links.front().missing, ENOENT);
    return false;
  }
  *out = links.front().file;
  return true;
}

std::string ChainResolver::TemplateNames() const {
  if (templates_.empty()) return "; no templates are defined";
  std::string names;
  for (const auto& [name, tmpl] : templates_) names += (names.empty() ? "" : ", ") + name;
  return "; templates: " + names;
}

}  // namespace corfs::config
