// Wiping key material: OPENSSL_cleanse, which the compiler cannot optimise away.
#include <alumia/base/secret.hpp>

#include <openssl/crypto.h>

namespace alumia {

void secure_wipe(void* p, std::size_t n) { OPENSSL_cleanse(p, n); }

}  // namespace alumia
