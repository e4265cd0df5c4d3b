// QMP block_resize: grows an image, as QEMU's block_resize grows a disk.
// Arguments as QEMU spells them: the image is `device` or `node-name`
// (corfs names a node as its image), `size` in bytes. A disk only grows:
// a smaller size is QEMU's GenericError "Cannot shrink ...".

#include "control/block_commands.h"

namespace corfs::control {

namespace {

QmpResult BlockResize(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"device", "node-name", "size"}, &error)) return {nlohmann::json(), error};
  if (a.Has("device") == a.Has("node-name")) {
    return QmpResult::Generic("Need exactly one of 'device' and 'node-name' (the image's name)");
  }
  std::string name;
  if (!a.String(a.Has("device") ? "device" : "node-name", &name, &error)) return {nlohmann::json(), error};
  uint64_t size = 0;
  if (!a.Unsigned("size", &size, &error)) return {nlohmann::json(), error};
  const std::shared_ptr<mount::MountedImage> image = context.images->Find(name);
  if (image == nullptr) return QmpResult::Error("DeviceNotFound", "Image '" + name + "' not found");
  if (image->export_gate.closed()) {
    return QmpResult::Generic("Image '" + name + "' is exported read-only (image-export-prep): its size stays");
  }
  const uint64_t current = image->overlay->size();
  if (size < current) {
    return QmpResult::Generic("Cannot shrink image '" + name + "' from " + std::to_string(current) + " to " +
                              std::to_string(size) + " bytes: corfs only grows disks");
  }
  Status status = image->overlay->Resize(size);
  if (!status.ok()) return QmpResult::Generic(status.message());
  if (size != current && context.size_changed) context.size_changed(name);
  return QmpResult::Ok();
}

}  // namespace

void AddResizeCommand(CommandTable& table, ControlContext& context) {
  ControlContext* ctx = &context;
  table.Add("block_resize", [ctx](const nlohmann::json& args) { return BlockResize(*ctx, args); });
}

}  // namespace corfs::control
