import { checkPackage } from '@apigate/kernel';

/**
 * Fails with every problem at once unless the package.json and the module's default export
 * form a valid provider package (name, keyword, peer dependency, manifest, matching definition).
 */
export function assertValidManifest(packageJson: unknown, defaultExport: unknown): void {
  const problems = checkPackage(packageJson, { default: defaultExport });
  if (problems.length) throw new Error(`invalid provider package:\n- ${problems.join('\n- ')}`);
}
