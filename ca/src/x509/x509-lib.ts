// The one place @peculiar/x509 is imported. Its dependency injection (tsyringe) needs the
// Reflect metadata API when the library loads, so the polyfill is imported first.
import 'reflect-metadata';

export * as x509 from '@peculiar/x509';
