// The registrar table: one row per provider with a setup command (registrar.hpp). The catalog's
// `commands` lists setup-webhook for a connector exactly when its webhook provider has a row here
// (tests/unit/test_catalog.cpp checks the two agree).
#include <alumia/setup/registrar.hpp>

#include <vector>

namespace alumia::setup {

const Registrar* find_registrar(Provider provider) {
  static const std::vector<const Registrar*> table = {
      // one row per provider: &telegram_registrar(), &github_registrar(), &stripe_registrar()
      &telegram_registrar(),
      &github_registrar(),
      &stripe_registrar(),
  };
  for (const Registrar* r : table)
    if (r->provider() == provider) return r;
  return nullptr;
}

}  // namespace alumia::setup
