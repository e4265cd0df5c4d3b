#include "control/qmp_command.h"

namespace corfs::control {

namespace {
bool Missing(const char* name, bool required, QmpError* error) {
  if (required) *error = {"GenericError", std::string("Parameter '") + name + "' is missing"};
  return !required;
}
bool WrongType(const char* name, const char* expected, QmpError* error) {
  *error = {"GenericError", std::string("Invalid parameter type for '") + name + "', expected: " + expected};
  return false;
}
}  // namespace

bool Arguments::String(const char* name, std::string* out, QmpError* error, bool required) const {
  if (!args_.contains(name)) return Missing(name, required, error);
  if (!args_[name].is_string()) return WrongType(name, "string", error);
  *out = args_[name].get<std::string>();
  return true;
}

bool Arguments::Unsigned(const char* name, uint64_t* out, QmpError* error, bool required) const {
  if (!args_.contains(name)) return Missing(name, required, error);
  const nlohmann::json& value = args_[name];
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return WrongType(name, "a non-negative integer", error);
}

bool Arguments::Bool(const char* name, bool* out, QmpError* error, bool required) const {
  if (!args_.contains(name)) return Missing(name, required, error);
  if (!args_[name].is_boolean()) return WrongType(name, "bool", error);
  *out = args_[name].get<bool>();
  return true;
}

bool Arguments::OnlyKnown(std::initializer_list<const char*> known, QmpError* error) const {
  for (const auto& [key, value] : args_.items()) {
    bool found = false;
    for (const char* name : known) found |= key == name;
    if (!found) {
      *error = {"GenericError", "Parameter '" + key + "' is unexpected"};
      return false;
    }
  }
  return true;
}

}  // namespace corfs::control
