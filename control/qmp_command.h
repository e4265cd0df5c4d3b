#pragma once
// The QMP command vocabulary: a command takes a JSON object of arguments and
// returns a JSON value, or fails with a QMP error class and description.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace corfs::control {

// A failed command, as QMP reports it: {"error": {"class": ..., "desc": ...}}.
struct QmpError {
  std::string error_class;  // "GenericError", "CommandNotFound", "DeviceNotFound", "DeviceNotActive"
  std::string desc;
};

// A command's outcome: a value, or an error.
struct QmpResult {
  nlohmann::json value = nlohmann::json::object();
  std::optional<QmpError> error;

  static QmpResult Ok(nlohmann::json value = nlohmann::json::object()) { return {std::move(value), std::nullopt}; }
  static QmpResult Error(std::string error_class, std::string desc) {
    return {nlohmann::json(), QmpError{std::move(error_class), std::move(desc)}};
  }
  static QmpResult Generic(std::string desc) { return Error("GenericError", std::move(desc)); }
};

// An argument that Arguments (below) refused, as the command's reply.
inline QmpResult Failed(const QmpError& error) { return QmpResult::Error(error.error_class, error.desc); }

using QmpHandler = std::function<QmpResult(const nlohmann::json& arguments)>;

// Name -> handler.
class CommandTable {
 public:
  void Add(const std::string& name, QmpHandler handler) { handlers_[name] = std::move(handler); }
  const QmpHandler* Find(const std::string& name) const {
    auto it = handlers_.find(name);
    return it == handlers_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, handler] : handlers_) names.push_back(name);
    return names;
  }

 private:
  std::map<std::string, QmpHandler> handlers_;
};

// Typed access to arguments, with QMP-style messages for what is missing or
// of the wrong type. Each returns false and fills *error on failure.
class Arguments {
 public:
  explicit Arguments(const nlohmann::json& args) : args_(args) {}

  bool String(const char* name, std::string* out, QmpError* error, bool required = true) const;
  bool Unsigned(const char* name, uint64_t* out, QmpError* error, bool required = true) const;
  bool Bool(const char* name, bool* out, QmpError* error, bool required = true) const;
  bool Has(const char* name) const { return args_.contains(name); }
  // Fails if an argument not in `known` is present.
  bool OnlyKnown(std::initializer_list<const char*> known, QmpError* error) const;

 private:
  const nlohmann::json& args_;
};

}  // namespace corfs::control
