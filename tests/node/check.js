// Adobe's @adobe/asset-compute-client, unchanged, against assetgate:
// register → process two renditions → wait for both events → unregister.
// Prints one JSON line with what it saw; exits non-zero on any failure.
//
// Environment: AC_URL (assetgate's base URL), AC_TOKEN (from
// scripts/compute-token), AC_ORG, AC_API_KEY, AC_SOURCE, AC_TARGET_1,
// AC_TARGET_2.
"use strict";
const { AssetComputeClient, AssetCompute } = require("@adobe/asset-compute-client");

const env = (name) => {
    const v = process.env[name];
    if (!v) {
        throw new Error(`${name} is not set`);
    }
    return v;
};

(async () => {
    const url = env("AC_URL");
    const accessToken = env("AC_TOKEN");
    const org = env("AC_ORG");
    const apiKey = env("AC_API_KEY");
    // The client takes Adobe IMS credentials and exchanges them for a token
    // in initialize(); assetgate issues tokens itself, so the token is
    // given to the client the way initialize() would have stored it.
    const client = new AssetComputeClient(
        { metascopes: ["asset_compute_meta"], technicalAccount: { org, clientId: apiKey } },
        { url, interval: 300 }
    );
    client.accessToken = accessToken;
    client.assetCompute = new AssetCompute({ url, accessToken, org, apiKey, interval: 300 });

    const registration = await client.register();
    const response = await client.process({ url: env("AC_SOURCE") }, [
        { name: "one.png", fmt: "png", width: 120, target: env("AC_TARGET_1") },
        { name: "two.jpg", fmt: "jpg", width: 60, quality: 70, target: env("AC_TARGET_2") },
    ]);
    const events = await client.waitActivation(response.requestId, 60000);
    await client.unregister();
    await client.close();
    console.log(JSON.stringify({
        journal: registration.journal,
        requestId: response.requestId,
        events: events.map((e) => ({
            type: e.type,
            requestId: e.requestId,
            name: e.rendition.name,
            width: e.metadata && e.metadata["tiff:ImageWidth"],
        })),
    }));
    process.exit(0);
})().catch((e) => {
    console.error("asset-compute-client check failed:", e);
    process.exit(1);
});
