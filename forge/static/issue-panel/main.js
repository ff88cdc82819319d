// Jira issue panel / issue context: experts, similar work and contributors for this issue.
import { view } from '@forge/bridge';
import { mountContent } from '../../ui/content.js';

view.getContext().then((context) => mountContent(document.getElementById('app'), 'jira', context.extension.issue.key));
