// A shared library loaded when first needed: alumia/base/shared_library.hpp says why and the contract.
#include <alumia/base/shared_library.hpp>

#include <dlfcn.h>

namespace alumia {

Result<SharedLibrary> SharedLibrary::open(const char* soname, std::string_view what, std::string_view package) {
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return fail(ErrorCode::service_unavailable,
                std::string(what) + " " + soname + " cannot be loaded (" + (why ? why : "unknown error") +
                    "): install it (Debian: apt-get install " + std::string(package) + ")");
  }
  return SharedLibrary(handle, soname, package);
}

void* SharedLibrary::symbol(const char* name) {
  void* found = ::dlsym(m_handle, name);
  if (found == nullptr && m_missing.empty()) m_missing = name;
  return found;
}

Error SharedLibrary::lacks(std::string_view needed) const {
  return Error{ErrorCode::service_unavailable,
               m_soname + " lacks " + m_missing + " (" + std::string(needed) + ": apt-get install " + m_package + ")"};
}

}  // namespace alumia
