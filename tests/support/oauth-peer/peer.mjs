// Test-only OAuth peer: oidc-provider 9.13.3 on 127.0.0.1 (OAUTH.md §4). Fixed secrets, in-memory state.
//
// stdout: exactly one line, `READY <issuer>`, once the listener is up. stderr: oidc-provider warnings
// (in-memory adapter, dev keys, unsupported Node runtime): log them, do not assert on them.
// SIGTERM / SIGINT: close the listener and exit 0.
//
// Environment:
//   PEER_PORT           listen port (default 0: the OS picks; read the issuer from the READY line)
//   PEER_MODE           auto (default: no UI, login_hint picks the account, login_hint=deny refuses)
//                       | ui (oidc-provider's dev login + consent forms)
//   PEER_CLIENT_SECRET  client secret of `alumia-test` (default test-only-secret)
//   PEER_CLIENT_AUTH    client_secret_basic (default) | client_secret_post
//   PEER_AT_TTL         access-token lifetime in seconds (default 60)
//
// Endpoints (issuer = http://127.0.0.1:PORT): /auth, /token, /token/revocation, /token/introspection,
// /me (userinfo: {sub, email}), /jwks, /.well-known/openid-configuration; and, for the tests' own
// assertions, /_peer/grants: {"<grant_type>": count} of the token grants it has granted so far.
import http from 'node:http';
import { Provider } from 'oidc-provider';

// oidc-provider prints NOTICE lines with console.info (stdout). Keep stdout for the READY line only.
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => console.error(...args);
}

const mode = process.env.PEER_MODE ?? 'auto';
if (mode !== 'auto' && mode !== 'ui') {
  process.stderr.write(`peer: PEER_MODE must be auto or ui, not ${mode}\n`);
  process.exit(2);
}

const server = http.createServer();
await new Promise((ok, fail) => {
  server.once('error', fail);
  server.listen(Number(process.env.PEER_PORT ?? 0), '127.0.0.1', ok);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'alumia-test',
    client_secret: process.env.PEER_CLIENT_SECRET ?? 'test-only-secret',
    token_endpoint_auth_method: process.env.PEER_CLIENT_AUTH ?? 'client_secret_basic',
    application_type: 'native',  // loopback redirect: any port (RFC 8252 §7.3)
    // 127.0.0.1 is the control listener's default; localhost stands for another origin in front of the
    // public listener (a redirect base on another host: its cookies are not 127.0.0.1's).
    redirect_uris: ['http://127.0.0.1/api/v1/connections/oauth/callback',
      'http://localhost/api/v1/connections/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },  // every client, S256 only
  rotateRefreshToken: true,        // every refresh rotates; reuse of a rotated RT kills the grant
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  scopes: ['openid', 'email', 'offline_access'],
  claims: { openid: ['sub'], email: ['email'] },
  features: {
    devInteractions: { enabled: mode === 'ui' },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },  // served at /me
  },
  ttl: {
    AccessToken: Number(process.env.PEER_AT_TTL ?? 60),
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 86400,
    Grant: 86400,
    Session: 3600,
    Interaction: 600,
  },
  cookies: { keys: ['test-only-cookie-key'] },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@peer.test` }),
  }),
});

if (mode === 'auto') {
  // No UI: log in as login_hint (default alice) and grant what was asked. Redirects back to the
  // authorization endpoint's resume URL with 303, as a real login page would after its form post.
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
    const { prompt, params, session, grantId } = await provider.interactionDetails(ctx.req, ctx.res);
    const finish = async (result, merge) => {
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, result,
        { mergeWithLastSubmission: merge });
      ctx.status = 303;
      ctx.redirect(returnTo);
    };
    if (params.login_hint === 'deny') return finish({ error: 'access_denied',
      error_description: 'the user refused (login_hint=deny)' }, false);
    if (prompt.name === 'login') {
      return finish({ login: { accountId: String(params.login_hint ?? 'alice') } }, false);
    }
    const grant = grantId ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    grant.addOIDCScope(String(params.scope ?? 'openid'));
    return finish({ consent: { grantId: await grant.save() } }, true);
  });
}

// Successful token grants by type, so a test can count refreshes at the authorization server itself.
const grants = {};
provider.on('grant.success', (ctx) => {
  const type = String(ctx.oidc.params.grant_type);
  grants[type] = (grants[type] ?? 0) + 1;
});

const serveProvider = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && req.url === '/_peer/grants') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(grants));
    return;
  }
  serveProvider(req, res);
});
process.stdout.write(`READY ${issuer}\n`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();  // a stuck socket must not block the harness
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
