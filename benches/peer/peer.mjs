// node-oidc-provider as the benchmark's peer: in-memory storage (its default adapter), one
// confidential client with client_credentials, opaque access tokens, introspection on.
// Usage: node peer.mjs PORT   (prints "ready" once it listens)
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 3999);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret-bench-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  scopes: ['openid', 'api'],
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
