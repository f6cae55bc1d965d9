// The commands part of docs/reference.md, made from the CLI's own usage texts: the top-level
// usage and every command's `--help`, so that the reference cannot say other than the CLI does.
// `npm run reference` writes it (write.ts); commands.test.ts fails when the file is behind.
import { COMMANDS, usage } from '../registry.js';

export const BEGIN = '<!-- BEGIN GENERATED: commands (npm run reference rewrites this part from the CLI\'s usage texts) -->';
export const END = '<!-- END GENERATED: commands -->';

function fence(text: string): string {
  return `\`\`\`text\n${text.endsWith('\n') ? text : `${text}\n`}\`\`\``;
}

/** The generated part, markers included. Loads every command's module (for its usage text). */
export async function commandsSection(): Promise<string> {
  const parts = [BEGIN, '', '`tsmesh --help`:', '', fence(usage())];
  for (const entry of COMMANDS) {
    const command = await entry.load();
    parts.push('', `### \`tsmesh ${entry.name}\``, '', `${entry.summary[0]?.toUpperCase() ?? ''}${entry.summary.slice(1)}.`, '', fence(command.help));
  }
  parts.push('', END);
  return parts.join('\n');
}

/** `doc` with its generated part replaced by `section`; throws when the markers are missing or out of order. */
export function replaceSection(doc: string, section: string): string {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`the reference has no generated commands part (the markers ${BEGIN} and ${END})`);
  return `${doc.slice(0, begin)}${section}${doc.slice(end + END.length)}`;
}
