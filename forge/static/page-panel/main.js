// Confluence macro and byline item: experts, similar work and contributors for this page.
import { view } from '@forge/bridge';
import { mountContent } from '../../ui/content.js';

view.getContext().then((context) => mountContent(document.getElementById('app'), 'confluence', String(context.extension.content.id)));
