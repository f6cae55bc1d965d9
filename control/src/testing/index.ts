// Test fakes other packages' tests use (`@tsmesh/control/testing`); never part of the product build.
export { FakeApiServer, FAKE_RESOURCES, type AccessAttributes, type FakeApiServerOptions, type FakeResource, type Fault, type RequestRecord } from './fake-apiserver.js';
