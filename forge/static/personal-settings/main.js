// Personal page (Jira personal settings, Confluence global page): what Inflow knows about you, preferences, export and erasure.
import { mountPersonal } from '../../ui/settings.js';

mountPersonal(document.getElementById('app'));
